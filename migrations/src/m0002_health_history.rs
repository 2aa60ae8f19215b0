//! Health check results and their rollups per minute, hour and day.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CheckResults {
    Table,
    Id,
    CheckId,
    AtMicros,
    Outcome,
    Message,
    ConnectMicros,
    TlsMicros,
    FirstByteMicros,
    TotalMicros,
    Measurements,
}

#[derive(DeriveIden)]
enum CheckRollups {
    Table,
    CheckId,
    Resolution,
    BucketStartMicros,
    Runs,
    Healthy,
    Degraded,
    Unhealthy,
    LatencyHistogram,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CheckResults::Table)
                    .col(
                        ColumnDef::new(CheckResults::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(CheckResults::CheckId).string().not_null())
                    .col(
                        ColumnDef::new(CheckResults::AtMicros)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CheckResults::Outcome).string().not_null())
                    .col(ColumnDef::new(CheckResults::Message).text().not_null())
                    .col(
                        ColumnDef::new(CheckResults::ConnectMicros)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(CheckResults::TlsMicros).big_integer().null())
                    .col(
                        ColumnDef::new(CheckResults::FirstByteMicros)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(CheckResults::TotalMicros)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CheckResults::Measurements).text().not_null())
                    .to_owned(),
            )
            .await?;
        // History of one check, newest first; and the latest failures overall.
        manager
            .create_index(
                Index::create()
                    .name("check_results_check_at")
                    .table(CheckResults::Table)
                    .col(CheckResults::CheckId)
                    .col(CheckResults::AtMicros)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("check_results_outcome_at")
                    .table(CheckResults::Table)
                    .col(CheckResults::Outcome)
                    .col(CheckResults::AtMicros)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CheckRollups::Table)
                    .col(ColumnDef::new(CheckRollups::CheckId).string().not_null())
                    .col(ColumnDef::new(CheckRollups::Resolution).string().not_null())
                    .col(
                        ColumnDef::new(CheckRollups::BucketStartMicros)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CheckRollups::Runs).big_integer().not_null())
                    .col(
                        ColumnDef::new(CheckRollups::Healthy)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CheckRollups::Degraded)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CheckRollups::Unhealthy)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CheckRollups::LatencyHistogram)
                            .text()
                            .not_null(),
                    )
                    // Windows read one resolution for a time range, for many checks.
                    .primary_key(
                        Index::create()
                            .col(CheckRollups::Resolution)
                            .col(CheckRollups::BucketStartMicros)
                            .col(CheckRollups::CheckId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("check_rollups_check")
                    .table(CheckRollups::Table)
                    .col(CheckRollups::CheckId)
                    .col(CheckRollups::Resolution)
                    .col(CheckRollups::BucketStartMicros)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CheckRollups::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CheckResults::Table).to_owned())
            .await
    }
}
