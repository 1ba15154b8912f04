//! Sync: signed records as received, uploads and content-addressed blobs, the files each
//! record refers to, device anomalies, field-proposed family changes awaiting review, and
//! the counters behind the monotonic pull cursor.

use sea_orm_migration::prelude::*;

use crate::columns::{big, index, stamp, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Records {
    Table,
    SeqId,
    Id,
    ChangeSeq,
    DeviceId,
    DeviceSeq,
    PrevSha256,
    RecordSha256,
    AuthorHelperId,
    AccountId,
    HouseholdId,
    RecordType,
    TargetId,
    VisitKind,
    VisitAt,
    CreatedAtDevice,
    ReceivedAt,
    Status,
    Flags,
    Body,
    Review,
}

#[derive(DeriveIden)]
enum Uploads {
    Table,
    Id,
    Sha256,
    Length,
    Status,
    AccountId,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Blobs {
    Table,
    Sha256,
    Size,
    ContentType,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RecordBlobs {
    Table,
    Id,
    RecordId,
    Sha256,
}

#[derive(DeriveIden)]
enum DeviceAnomalies {
    Table,
    Id,
    DeviceId,
    HelperId,
    Kind,
    DeviceSeq,
    Detail,
    DetectedAt,
}

#[derive(DeriveIden)]
enum FieldChanges {
    Table,
    Id,
    RecordId,
    HouseholdId,
    Kind,
    Name,
    Status,
    Note,
    DecidedBy,
    DecidedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SyncCounters {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Records::Table)
                .col(
                    ColumnDef::new(Records::SeqId)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(text(Records::Id))
                .col(big(Records::ChangeSeq))
                .col(big(Records::DeviceId))
                .col(big(Records::DeviceSeq))
                .col(text(Records::PrevSha256))
                .col(text(Records::RecordSha256))
                .col(big(Records::AuthorHelperId))
                .col(big(Records::AccountId))
                .col(big(Records::HouseholdId))
                .col(text(Records::RecordType))
                .col(ColumnDef::new(Records::TargetId).string().null())
                .col(ColumnDef::new(Records::VisitKind).string().null())
                .col(
                    ColumnDef::new(Records::VisitAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(stamp(Records::CreatedAtDevice))
                .col(stamp(Records::ReceivedAt))
                .col(text(Records::Status))
                .col(text(Records::Flags))
                .col(ColumnDef::new(Records::Body).text().not_null())
                .col(ColumnDef::new(Records::Review).text().null())
                .to_owned(),
        )
        .await?;
        for (name, cols, unique) in [
            ("ux_records_id", vec![Records::Id.into_iden()], true),
            (
                "ix_records_device_seq",
                vec![
                    Records::DeviceId.into_iden(),
                    Records::DeviceSeq.into_iden(),
                ],
                false,
            ),
            (
                "ix_records_author_change",
                vec![
                    Records::AuthorHelperId.into_iden(),
                    Records::ChangeSeq.into_iden(),
                ],
                false,
            ),
            (
                "ix_records_household_at",
                vec![
                    Records::HouseholdId.into_iden(),
                    Records::VisitAt.into_iden(),
                ],
                false,
            ),
            (
                "ix_records_status",
                vec![Records::Status.into_iden()],
                false,
            ),
        ] {
            m.create_index(index(name, Records::Table, cols, unique))
                .await?;
        }

        m.create_table(
            Table::create()
                .table(Uploads::Table)
                .col(
                    ColumnDef::new(Uploads::Id)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Uploads::Sha256).string().null())
                .col(big(Uploads::Length))
                .col(text(Uploads::Status))
                .col(big(Uploads::AccountId))
                .col(stamp(Uploads::CreatedAt))
                .col(
                    ColumnDef::new(Uploads::CompletedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_uploads_sha256",
            Uploads::Table,
            vec![Uploads::Sha256.into_iden()],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Blobs::Table)
                .col(
                    ColumnDef::new(Blobs::Sha256)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(big(Blobs::Size))
                .col(text(Blobs::ContentType))
                .col(stamp(Blobs::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RecordBlobs::Table)
                .col(
                    ColumnDef::new(RecordBlobs::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(text(RecordBlobs::RecordId))
                .col(text(RecordBlobs::Sha256))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_record_blobs_sha",
            RecordBlobs::Table,
            vec![RecordBlobs::Sha256.into_iden()],
            false,
        ))
        .await?;
        m.create_index(index(
            "ix_record_blobs_record",
            RecordBlobs::Table,
            vec![RecordBlobs::RecordId.into_iden()],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(DeviceAnomalies::Table)
                .col(
                    ColumnDef::new(DeviceAnomalies::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(big(DeviceAnomalies::DeviceId))
                .col(big(DeviceAnomalies::HelperId))
                .col(text(DeviceAnomalies::Kind))
                .col(big(DeviceAnomalies::DeviceSeq))
                .col(text(DeviceAnomalies::Detail))
                .col(stamp(DeviceAnomalies::DetectedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_anomalies_device",
            DeviceAnomalies::Table,
            vec![DeviceAnomalies::DeviceId.into_iden()],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(FieldChanges::Table)
                .col(
                    ColumnDef::new(FieldChanges::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(text(FieldChanges::RecordId))
                .col(big(FieldChanges::HouseholdId))
                .col(text(FieldChanges::Kind))
                .col(text(FieldChanges::Name))
                .col(text(FieldChanges::Status))
                .col(ColumnDef::new(FieldChanges::Note).string().null())
                .col(ColumnDef::new(FieldChanges::DecidedBy).big_integer().null())
                .col(
                    ColumnDef::new(FieldChanges::DecidedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(stamp(FieldChanges::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_field_changes_household",
            FieldChanges::Table,
            vec![
                FieldChanges::HouseholdId.into_iden(),
                FieldChanges::Status.into_iden(),
            ],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(SyncCounters::Table)
                .col(
                    ColumnDef::new(SyncCounters::Name)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(big(SyncCounters::Value))
                .to_owned(),
        )
        .await?;
        let seed = Query::insert()
            .into_table(SyncCounters::Table)
            .columns([SyncCounters::Name, SyncCounters::Value])
            .values_panic(["change".into(), 0i64.into()])
            .to_owned();
        m.exec_stmt(seed).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SyncCounters::Table.into_iden(),
            FieldChanges::Table.into_iden(),
            DeviceAnomalies::Table.into_iden(),
            RecordBlobs::Table.into_iden(),
            Blobs::Table.into_iden(),
            Uploads::Table.into_iden(),
            Records::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
