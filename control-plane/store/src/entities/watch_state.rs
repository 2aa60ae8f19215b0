//! The latest state of every watched key (upserts kept, deletes removed): the source of
//! Watch snapshots, which no journal compaction can shorten.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "watch_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub topic: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub revision: i64,
    pub project_id: Option<String>,
    pub environment: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub committed_at_micros: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
