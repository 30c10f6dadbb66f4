//! The WhatsApp Cloud API as types.
