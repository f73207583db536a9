//! Configuration: the YAML types and the loader with located errors.

pub mod types;
