//! TEMPORARY stub (replaced by the leaves branch).
use crate::config::types::ScheduleConfig;
use chrono::{DateTime, Utc};
#[derive(Debug, Clone)]
pub struct Schedule;
#[derive(Debug, Clone)]
pub struct ScheduleError {
    pub field: String,
    pub message: String,
}
impl Schedule {
    pub fn compile(_cfg: &ScheduleConfig) -> Result<Schedule, Vec<ScheduleError>> {
        Ok(Schedule)
    }
    pub fn is_open(&self, _at: DateTime<Utc>) -> bool {
        true
    }
    pub fn explain(&self, _at: DateTime<Utc>) -> String {
        "open".into()
    }
}
