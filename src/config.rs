//! Configuration: the YAML types and the loader with located errors.

pub(crate) mod allow;
pub mod load;
pub(crate) mod problem;
pub(crate) mod schema;
pub mod types;
pub(crate) mod unknown;

pub use load::{load, load_str};

pub(crate) use load::{LoadedConfig, LoadedList, load_all};
pub use problem::Problem;
pub(crate) use problem::Problems;
