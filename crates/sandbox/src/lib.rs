//! A local stand-in for Meta.
