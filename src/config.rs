//! Configuration: the YAML types and the loader with located errors.

pub(crate) mod allow;
pub mod load;
pub mod problem;
pub(crate) mod schema;
pub mod types;
pub mod unknown;

pub use load::{LoadedConfig, LoadedList, load, load_all, load_str};
pub use problem::{Problem, Problems};
