//! wabridge
