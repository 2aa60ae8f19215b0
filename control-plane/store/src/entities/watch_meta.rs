//! One row (id 1): the journal's head revision and how far it has been compacted. Every
//! journal write updates `head` in its transaction, so the row lock orders writers, even
//! across PostgreSQL replicas.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "watch_meta")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub head: i64,
    pub compacted_through: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
