use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at_micros: i64,
    pub actor: String,
    pub method: String,
    pub deployment_id: String,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    pub request_id: String,
    pub code: String,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub operation_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
