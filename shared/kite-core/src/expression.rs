//! Kestra (Pebble) expressions rendered with tera, through a compatibility layer.
