//! Operations (actions on deployments, stored before they run) and the audit log of
//! action calls, denied ones included.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Operations {
    Table,
    Id,
    RequestId,
    DeploymentId,
    State,
    CreatedMicros,
    Body,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    AtMicros,
    Actor,
    Method,
    DeploymentId,
    Reason,
    RequestId,
    Code,
    Message,
    OperationId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Operations::Table)
                    .col(
                        ColumnDef::new(Operations::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Operations::RequestId).string().null())
                    .col(ColumnDef::new(Operations::DeploymentId).string().not_null())
                    .col(ColumnDef::new(Operations::State).string().not_null())
                    .col(
                        ColumnDef::new(Operations::CreatedMicros)
                            .big_integer()
                            .not_null(),
                    )
                    // The domain operation as JSON: steps, result, timestamps.
                    .col(ColumnDef::new(Operations::Body).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("operations_request_id")
                    .table(Operations::Table)
                    .col(Operations::RequestId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("operations_created")
                    .table(Operations::Table)
                    .col(Operations::CreatedMicros)
                    .col(Operations::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("operations_state")
                    .table(Operations::Table)
                    .col(Operations::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(
                        ColumnDef::new(AuditLog::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditLog::AtMicros).big_integer().not_null())
                    .col(ColumnDef::new(AuditLog::Actor).string().not_null())
                    .col(ColumnDef::new(AuditLog::Method).string().not_null())
                    .col(ColumnDef::new(AuditLog::DeploymentId).string().not_null())
                    .col(ColumnDef::new(AuditLog::Reason).text().not_null())
                    .col(ColumnDef::new(AuditLog::RequestId).string().not_null())
                    .col(ColumnDef::new(AuditLog::Code).string().not_null())
                    .col(ColumnDef::new(AuditLog::Message).text().not_null())
                    .col(ColumnDef::new(AuditLog::OperationId).string().not_null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Operations::Table).to_owned())
            .await
    }
}
