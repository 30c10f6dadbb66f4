// wabridge's only script for now: nothing runs until a page asks for it.
"use strict";
