//! The pairing ledger: jurisdictions, households, helpers, pairings with history,
//! versioned policies, accounts, bearer tokens, devices and the append-only audit log.

use sea_orm_migration::prelude::*;

use crate::columns::{big, foreign, id, index, stamp, text};
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jurisdictions {
    Table,
    Id,
    Level,
    Name,
    ParentId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Households {
    Table,
    Id,
    CountyId,
    TownId,
    VillageId,
    HeadName,
    Phone,
    Address,
    Size,
    Members,
    Cause,
    Measures,
    Status,
    LedgerSeq,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Helpers {
    Table,
    Id,
    CountyId,
    Name,
    UnitPosition,
    Phone,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Pairings {
    Table,
    Id,
    HouseholdId,
    HelperId,
    Role,
    ValidFrom,
    ValidTo,
    FiledOn,
    Reason,
    ShortNotice,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Policies {
    Table,
    Id,
    CountyId,
    TownId,
    ValidFrom,
    Source,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    ScopeId,
    HelperId,
    EnrollmentCodeHash,
    EnrollmentExpiresAt,
    Disabled,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuthTokens {
    Table,
    Id,
    AccountId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    AccountId,
    PublicKey,
    Label,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    AccountId,
    Action,
    Entity,
    EntityId,
    Detail,
    RemoteAddr,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Jurisdictions::Table)
                .col(id(Jurisdictions::Id))
                .col(text(Jurisdictions::Level))
                .col(text(Jurisdictions::Name))
                .col(ColumnDef::new(Jurisdictions::ParentId).big_integer().null())
                .col(stamp(Jurisdictions::CreatedAt))
                .foreign_key(&mut foreign(
                    (Jurisdictions::Table, Jurisdictions::ParentId),
                    (Jurisdictions::Table, Jurisdictions::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_jurisdictions_parent_name",
            Jurisdictions::Table,
            vec![
                Jurisdictions::ParentId.into_iden(),
                Jurisdictions::Name.into_iden(),
            ],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Households::Table)
                .col(id(Households::Id))
                .col(big(Households::CountyId))
                .col(big(Households::TownId))
                .col(big(Households::VillageId))
                .col(text(Households::HeadName))
                .col(text(Households::Phone))
                .col(text(Households::Address))
                .col(ColumnDef::new(Households::Size).integer().null())
                .col(ColumnDef::new(Households::Members).text().not_null())
                .col(text(Households::Cause))
                .col(text(Households::Measures))
                .col(text(Households::Status))
                .col(ColumnDef::new(Households::LedgerSeq).integer().not_null())
                .col(stamp(Households::CreatedAt))
                .col(stamp(Households::UpdatedAt))
                .foreign_key(&mut foreign(
                    (Households::Table, Households::CountyId),
                    (Jurisdictions::Table, Jurisdictions::Id),
                ))
                .foreign_key(&mut foreign(
                    (Households::Table, Households::TownId),
                    (Jurisdictions::Table, Jurisdictions::Id),
                ))
                .foreign_key(&mut foreign(
                    (Households::Table, Households::VillageId),
                    (Jurisdictions::Table, Jurisdictions::Id),
                ))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            (
                "ix_households_village_head",
                vec![
                    Households::VillageId.into_iden(),
                    Households::HeadName.into_iden(),
                ],
            ),
            (
                "ix_households_town_seq",
                vec![
                    Households::TownId.into_iden(),
                    Households::LedgerSeq.into_iden(),
                ],
            ),
            (
                "ix_households_county",
                vec![Households::CountyId.into_iden()],
            ),
        ] {
            m.create_index(index(name, Households::Table, cols, false))
                .await?;
        }

        m.create_table(
            Table::create()
                .table(Helpers::Table)
                .col(id(Helpers::Id))
                .col(big(Helpers::CountyId))
                .col(text(Helpers::Name))
                .col(text(Helpers::UnitPosition))
                .col(
                    ColumnDef::new(Helpers::Phone)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(stamp(Helpers::CreatedAt))
                .col(stamp(Helpers::UpdatedAt))
                .foreign_key(&mut foreign(
                    (Helpers::Table, Helpers::CountyId),
                    (Jurisdictions::Table, Jurisdictions::Id),
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Pairings::Table)
                .col(id(Pairings::Id))
                .col(big(Pairings::HouseholdId))
                .col(big(Pairings::HelperId))
                .col(text(Pairings::Role))
                .col(ColumnDef::new(Pairings::ValidFrom).date().not_null())
                .col(ColumnDef::new(Pairings::ValidTo).date().null())
                .col(ColumnDef::new(Pairings::FiledOn).date().not_null())
                .col(ColumnDef::new(Pairings::Reason).string().null())
                .col(
                    ColumnDef::new(Pairings::ShortNotice)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(stamp(Pairings::CreatedAt))
                .foreign_key(&mut foreign(
                    (Pairings::Table, Pairings::HouseholdId),
                    (Households::Table, Households::Id),
                ))
                .foreign_key(&mut foreign(
                    (Pairings::Table, Pairings::HelperId),
                    (Helpers::Table, Helpers::Id),
                ))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            (
                "ix_pairings_household",
                vec![
                    Pairings::HouseholdId.into_iden(),
                    Pairings::Role.into_iden(),
                    Pairings::ValidTo.into_iden(),
                ],
            ),
            (
                "ix_pairings_helper",
                vec![
                    Pairings::HelperId.into_iden(),
                    Pairings::ValidTo.into_iden(),
                ],
            ),
        ] {
            m.create_index(index(name, Pairings::Table, cols, false))
                .await?;
        }

        m.create_table(
            Table::create()
                .table(Policies::Table)
                .col(id(Policies::Id))
                .col(big(Policies::CountyId))
                .col(ColumnDef::new(Policies::TownId).big_integer().null())
                .col(ColumnDef::new(Policies::ValidFrom).date().not_null())
                .col(text(Policies::Source))
                .col(ColumnDef::new(Policies::Body).text().not_null())
                .col(stamp(Policies::CreatedAt))
                .foreign_key(&mut foreign(
                    (Policies::Table, Policies::CountyId),
                    (Jurisdictions::Table, Jurisdictions::Id),
                ))
                .foreign_key(&mut foreign(
                    (Policies::Table, Policies::TownId),
                    (Jurisdictions::Table, Jurisdictions::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_policies_county_from",
            Policies::Table,
            vec![
                Policies::CountyId.into_iden(),
                Policies::ValidFrom.into_iden(),
            ],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Accounts::Table)
                .col(id(Accounts::Id))
                .col(
                    ColumnDef::new(Accounts::Username)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Accounts::PasswordHash).string().null())
                .col(text(Accounts::Role))
                .col(ColumnDef::new(Accounts::ScopeId).big_integer().null())
                .col(
                    ColumnDef::new(Accounts::HelperId)
                        .big_integer()
                        .null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Accounts::EnrollmentCodeHash).string().null())
                .col(
                    ColumnDef::new(Accounts::EnrollmentExpiresAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(Accounts::Disabled)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(stamp(Accounts::CreatedAt))
                .foreign_key(&mut foreign(
                    (Accounts::Table, Accounts::ScopeId),
                    (Jurisdictions::Table, Jurisdictions::Id),
                ))
                .foreign_key(&mut foreign(
                    (Accounts::Table, Accounts::HelperId),
                    (Helpers::Table, Helpers::Id),
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuthTokens::Table)
                .col(id(AuthTokens::Id))
                .col(big(AuthTokens::AccountId))
                .col(
                    ColumnDef::new(AuthTokens::TokenHash)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(stamp(AuthTokens::CreatedAt))
                .col(stamp(AuthTokens::ExpiresAt))
                .col(
                    ColumnDef::new(AuthTokens::RevokedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(&mut foreign(
                    (AuthTokens::Table, AuthTokens::AccountId),
                    (Accounts::Table, Accounts::Id),
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Devices::Table)
                .col(id(Devices::Id))
                .col(big(Devices::AccountId))
                .col(
                    ColumnDef::new(Devices::PublicKey)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(text(Devices::Label))
                .col(stamp(Devices::CreatedAt))
                .col(
                    ColumnDef::new(Devices::RevokedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(&mut foreign(
                    (Devices::Table, Devices::AccountId),
                    (Accounts::Table, Accounts::Id),
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(id(AuditLog::Id))
                .col(stamp(AuditLog::At))
                .col(ColumnDef::new(AuditLog::AccountId).big_integer().null())
                .col(text(AuditLog::Action))
                .col(text(AuditLog::Entity))
                .col(ColumnDef::new(AuditLog::EntityId).big_integer().null())
                .col(ColumnDef::new(AuditLog::Detail).text().not_null())
                .col(ColumnDef::new(AuditLog::RemoteAddr).string().null())
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_audit_entity",
            AuditLog::Table,
            vec![AuditLog::Entity.into_iden(), AuditLog::EntityId.into_iden()],
            false,
        ))
        .await?;
        forbid_audit_rewrites(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            Devices::Table.into_iden(),
            AuthTokens::Table.into_iden(),
            Accounts::Table.into_iden(),
            Policies::Table.into_iden(),
            Pairings::Table.into_iden(),
            Helpers::Table.into_iden(),
            Households::Table.into_iden(),
            Jurisdictions::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        if m.get_database_backend() == DbBackend::Postgres {
            m.get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS audit_log_append_only()")
                .await?;
        }
        Ok(())
    }
}

/// The audit log is append-only in the database itself, not only by convention:
/// an UPDATE or DELETE on it aborts, whichever program tries.
async fn forbid_audit_rewrites(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = m.get_connection();
    match m.get_database_backend() {
        DbBackend::Sqlite => {
            for op in ["UPDATE", "DELETE"] {
                db.execute_unprepared(&format!(
                    "CREATE TRIGGER audit_log_no_{op} BEFORE {op} ON audit_log \
                     BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
                ))
                .await?;
            }
        }
        DbBackend::Postgres => {
            db.execute_unprepared(
                "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql",
            )
            .await?;
            db.execute_unprepared(
                "CREATE TRIGGER audit_log_no_rewrite BEFORE UPDATE OR DELETE ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}
