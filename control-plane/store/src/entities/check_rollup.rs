use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "check_rollups")]
pub struct Model {
    /// `m`, `h` or `d`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub resolution: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket_start_micros: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub check_id: String,
    pub runs: i64,
    pub healthy: i64,
    pub degraded: i64,
    pub unhealthy: i64,
    /// Comma-separated counts per latency bucket (see `health::history::LatencyHistogram`).
    #[sea_orm(column_type = "Text")]
    pub latency_histogram: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
