//! One-minute metric rollups, and an index for event history. Events need no table of
//! their own: they are journal entries on the `events` topic, which `EventService` reads
//! newest first, often from a point in time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MetricRollups {
    Table,
    SeriesKey,
    MinuteMs,
    Name,
    Labels,
    Count,
    Sum,
    Min,
    Max,
    Last,
}

#[derive(DeriveIden)]
enum Journal {
    Table,
    Topic,
    Revision,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MetricRollups::Table)
                    .col(ColumnDef::new(MetricRollups::SeriesKey).text().not_null())
                    .col(
                        ColumnDef::new(MetricRollups::MinuteMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(MetricRollups::Name).text().not_null())
                    .col(ColumnDef::new(MetricRollups::Labels).text().not_null())
                    .col(
                        ColumnDef::new(MetricRollups::Count)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(MetricRollups::Sum).double().not_null())
                    .col(ColumnDef::new(MetricRollups::Min).double().not_null())
                    .col(ColumnDef::new(MetricRollups::Max).double().not_null())
                    .col(ColumnDef::new(MetricRollups::Last).double().not_null())
                    .primary_key(
                        Index::create()
                            .col(MetricRollups::SeriesKey)
                            .col(MetricRollups::MinuteMs),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("metric_rollups_by_name")
                    .table(MetricRollups::Table)
                    .col(MetricRollups::Name)
                    .col(MetricRollups::MinuteMs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("metric_rollups_by_minute")
                    .table(MetricRollups::Table)
                    .col(MetricRollups::MinuteMs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("journal_topic_revision")
                    .table(Journal::Table)
                    .col(Journal::Topic)
                    .col(Journal::Revision)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("journal_topic_revision")
                    .table(Journal::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(MetricRollups::Table).to_owned())
            .await
    }
}
