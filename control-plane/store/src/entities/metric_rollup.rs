use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_rollups")]
pub struct Model {
    /// `name{k="v",...}` with labels sorted.
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub series_key: String,
    /// Start of the minute, milliseconds since the Unix epoch.
    #[sea_orm(primary_key, auto_increment = false)]
    pub minute_ms: i64,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    /// Labels as a JSON object.
    #[sea_orm(column_type = "Text")]
    pub labels: String,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
