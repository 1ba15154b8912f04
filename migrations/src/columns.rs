//! Column and index builders the migrations share, so every table spells ids, foreign
//! keys, text and timestamps the same way on SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;

/// A 64-bit auto-increment primary key.
pub fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

/// A required 64-bit integer (ids of other rows, counters).
pub fn big(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

/// Required text.
pub fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().not_null().to_owned()
}

/// A required timestamp with time zone.
pub fn stamp(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

/// A foreign key from `from` (table, column) to `to` (table, column).
pub fn foreign(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .to_owned()
}

/// A (unique) index over `cols`.
pub fn index(
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
    unique: bool,
) -> IndexCreateStatement {
    let mut stmt = Index::create().name(name).table(table).to_owned();
    for c in cols {
        stmt.col(c);
    }
    if unique {
        stmt.unique();
    }
    stmt
}
