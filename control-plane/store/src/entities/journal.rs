use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "journal")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub revision: i64,
    pub topic: String,
    pub op: String,
    pub key: String,
    pub project_id: Option<String>,
    pub environment: Option<String>,
    /// The journal `Object` as JSON.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub committed_at_micros: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
