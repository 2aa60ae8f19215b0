use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "check_results")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub check_id: String,
    pub at_micros: i64,
    pub outcome: String,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub connect_micros: Option<i64>,
    pub tls_micros: Option<i64>,
    pub first_byte_micros: Option<i64>,
    pub total_micros: i64,
    /// JSON object of named measurements.
    #[sea_orm(column_type = "Text")]
    pub measurements: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
