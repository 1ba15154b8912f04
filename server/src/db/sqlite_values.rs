//! Values between sea-orm and the writer's own SQLite connection (`rusqlite`, see
//! [`super::write_txn`]): statement values bound exactly as sqlx binds them, and rows
//! decoded into sea-orm rows, so what the writer stores the pool reads back unchanged
//! and the other way round.
//!
//! A row is decoded by each column's declared type, which SQLite reports for table
//! columns (also through aliases and `RETURNING`): `integer` → `i64`, `boolean` → `bool`,
//! `timestamp…` → `DateTime<Utc>`, `date…` → `NaiveDate`, text otherwise. Expressions
//! (no declared type) decode by what they hold. That is exact because every entity field
//! is one of those types (`entity_columns_decode_exactly` below keeps it so).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::types::{Value as Sql, ValueRef};
use sea_orm::{
    DbBackend, DbErr, ExecResult, MockDatabase, MockDatabaseTrait, MockExecResult, QueryResult,
    Statement, Value,
};
use std::collections::BTreeMap;

/// `v` as sqlx's SQLite driver binds it (sea-query-sqlx): integers and booleans as
/// integers, timestamps as RFC 3339 text, dates `%F`, JSON as its text.
pub fn bind(v: &Value) -> Result<Sql, DbErr> {
    fn or_null<T>(v: &Option<T>, f: impl FnOnce(&T) -> Sql) -> Sql {
        v.as_ref().map_or(Sql::Null, f)
    }
    Ok(match v {
        Value::Bool(b) => or_null(b, |b| Sql::Integer(i64::from(*b))),
        Value::TinyInt(i) => or_null(i, |i| Sql::Integer(i64::from(*i))),
        Value::SmallInt(i) => or_null(i, |i| Sql::Integer(i64::from(*i))),
        Value::Int(i) => or_null(i, |i| Sql::Integer(i64::from(*i))),
        Value::BigInt(i) => or_null(i, |i| Sql::Integer(*i)),
        Value::TinyUnsigned(i) => or_null(i, |i| Sql::Integer(i64::from(*i))),
        Value::SmallUnsigned(i) => or_null(i, |i| Sql::Integer(i64::from(*i))),
        Value::Unsigned(i) => or_null(i, |i| Sql::Integer(i64::from(*i))),
        Value::BigUnsigned(Some(i)) => Sql::Integer(
            i64::try_from(*i)
                .map_err(|_| DbErr::Custom(format!("{i} does not fit SQLite's integer")))?,
        ),
        Value::BigUnsigned(None) => Sql::Null,
        Value::Float(f) => or_null(f, |f| Sql::Real(f64::from(*f))),
        Value::Double(f) => or_null(f, |f| Sql::Real(*f)),
        Value::String(s) => or_null(s, |s| Sql::Text(s.clone())),
        Value::Char(c) => or_null(c, |c| Sql::Text(c.to_string())),
        Value::Enum(sea_orm::sea_query::OptionEnum::Some(e)) => Sql::Text(e.value.to_string()),
        Value::Enum(sea_orm::sea_query::OptionEnum::None(_)) => Sql::Null,
        Value::Bytes(b) => or_null(b, |b| Sql::Blob(b.clone())),
        Value::Json(j) => match j {
            Some(j) => Sql::Text(serde_json::to_string(j).map_err(|e| DbErr::Json(e.to_string()))?),
            None => Sql::Null,
        },
        Value::ChronoDate(d) => or_null(d, |d| Sql::Text(d.format("%F").to_string())),
        Value::ChronoTime(t) => or_null(t, |t| Sql::Text(t.format("%T%.f").to_string())),
        Value::ChronoDateTime(t) => or_null(t, |t| Sql::Text(t.format("%F %T%.f").to_string())),
        Value::ChronoDateTimeUtc(t) => or_null(t, |t| Sql::Text(rfc3339(t))),
        Value::ChronoDateTimeLocal(t) => or_null(t, |t| Sql::Text(rfc3339(t))),
        Value::ChronoDateTimeWithTimeZone(t) => or_null(t, |t| Sql::Text(rfc3339(t))),
        #[allow(
            unreachable_patterns,
            reason = "sea-query's value kinds vary with its features"
        )]
        other => {
            return Err(DbErr::Custom(format!(
                "the SQLite writer does not bind {other:?}"
            )));
        }
    })
}

/// A timestamp as SQLite keeps it, to the microsecond as PostgreSQL's `timestamptz`
/// does: the same instant reads back the same from either backend, in the API's JSON
/// too (QA s24a F2: nine digits from SQLite, six from PostgreSQL).
fn rfc3339<Tz: TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    use chrono::{DurationRound, TimeDelta};
    let micros = t
        .clone()
        .duration_trunc(TimeDelta::microseconds(1))
        .unwrap_or_else(|_| t.clone());
    micros.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// What a column decodes to, from its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Bool,
    Timestamp,
    Date,
    Real,
    Blob,
    Text,
    /// An expression: decoded by the value's storage class.
    Any,
}

impl Kind {
    /// The kind of a column declared `decl` (SQLite's affinity rules, narrowed to the
    /// types the migrations declare).
    pub fn of(decl: Option<&str>) -> Kind {
        let Some(decl) = decl else {
            return Kind::Any;
        };
        let d = decl.to_ascii_lowercase();
        if d.starts_with("bool") {
            Kind::Bool
        } else if d.starts_with("timestamp") || d.starts_with("datetime") {
            Kind::Timestamp
        } else if d.starts_with("date") {
            Kind::Date
        } else if d.contains("int") {
            Kind::Integer
        } else if d.contains("real") || d.contains("floa") || d.contains("doub") {
            Kind::Real
        } else if d.starts_with("blob") || d.starts_with("binary") {
            Kind::Blob
        } else {
            Kind::Text
        }
    }

    fn null(self) -> Value {
        match self {
            Kind::Integer | Kind::Any => Value::BigInt(None),
            Kind::Bool => Value::Bool(None),
            Kind::Timestamp => Value::ChronoDateTimeUtc(None),
            Kind::Date => Value::ChronoDate(None),
            Kind::Real => Value::Double(None),
            Kind::Blob => Value::Bytes(None),
            Kind::Text => Value::String(None),
        }
    }
}

/// A result column: its name and kind.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// The columns of a prepared statement.
pub fn columns(stmt: &rusqlite::Statement<'_>) -> Vec<Column> {
    stmt.columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            kind: Kind::of(c.decl_type()),
        })
        .collect()
}

/// A row's values by column name (the first of a repeated name wins, as with sqlx).
pub type Row = BTreeMap<String, Value>;

/// A row as sea-orm reads it, see [`results`].
pub fn row(r: &rusqlite::Row<'_>, cols: &[Column]) -> Result<Row, DbErr> {
    let mut values = BTreeMap::new();
    for (i, c) in cols.iter().enumerate() {
        if values.contains_key(&c.name) {
            continue;
        }
        let v = r
            .get_ref(i)
            .map_err(|e| DbErr::Type(format!("column {}: {e}", c.name)))?;
        values.insert(c.name.clone(), decode(v, c)?);
    }
    Ok(values)
}

/// `rows` as sea-orm's query results. sea-orm builds a result only from its drivers'
/// rows or from a row of named values, and the one public way to the latter is its
/// in-memory database (its `proxy` rows do not build beside `sqlx-sqlite` in 2.0.4), so
/// the rows are handed to one and read back. Such rows are read by column name, which
/// is how models and single-column tuples read; a tuple of several columns reads them
/// by position, which here is name order, so write transactions select whole models
/// or single columns.
pub fn results(rows: Vec<Row>) -> Result<Vec<QueryResult>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    MockDatabase::new(DbBackend::Sqlite)
        .append_query_results([rows])
        .query(0, Statement::from_string(DbBackend::Sqlite, String::new()))
}

/// An execution's outcome as sea-orm reports one (the same way as [`results`]).
pub fn executed(last_insert_id: i64, rows_affected: u64) -> Result<ExecResult, DbErr> {
    MockDatabase::new(DbBackend::Sqlite)
        .append_exec_results([MockExecResult {
            last_insert_id: u64::try_from(last_insert_id).unwrap_or(0),
            rows_affected,
        }])
        .execute(0, Statement::from_string(DbBackend::Sqlite, String::new()))
}

fn decode(v: ValueRef<'_>, c: &Column) -> Result<Value, DbErr> {
    let wrong = || {
        DbErr::Type(format!(
            "column {} holds {:?}, not a value of its declared type ({:?})",
            c.name,
            v.data_type(),
            c.kind
        ))
    };
    Ok(match (c.kind, v) {
        (kind, ValueRef::Null) => kind.null(),
        (Kind::Integer | Kind::Any, ValueRef::Integer(i)) => Value::BigInt(Some(i)),
        (Kind::Bool, ValueRef::Integer(i)) => Value::Bool(Some(i != 0)),
        (Kind::Real | Kind::Any, ValueRef::Real(f)) => Value::Double(Some(f)),
        (Kind::Real, ValueRef::Integer(i)) => Value::Double(Some(i as f64)),
        (Kind::Blob | Kind::Any, ValueRef::Blob(b)) => Value::Bytes(Some(b.to_vec())),
        (Kind::Timestamp, ValueRef::Text(t)) => Value::ChronoDateTimeUtc(Some(
            timestamp(std::str::from_utf8(t).map_err(|_| wrong())?)
                .ok_or_else(wrong)?
                .with_timezone(&Utc),
        )),
        (Kind::Timestamp, ValueRef::Integer(secs)) => {
            Value::ChronoDateTimeUtc(Some(Utc.timestamp_opt(secs, 0).single().ok_or_else(wrong)?))
        }
        (Kind::Date, ValueRef::Text(t)) => Value::ChronoDate(Some(
            NaiveDate::parse_from_str(std::str::from_utf8(t).map_err(|_| wrong())?, "%F")
                .map_err(|_| wrong())?,
        )),
        (Kind::Text | Kind::Any, ValueRef::Text(t)) => Value::String(Some(
            std::str::from_utf8(t).map_err(|_| wrong())?.to_string(),
        )),
        (Kind::Text, ValueRef::Integer(i)) => Value::String(Some(i.to_string())),
        _ => return Err(wrong()),
    })
}

/// A timestamp in any of the text forms sqlx's SQLite driver reads: RFC 3339 first,
/// then SQLite's own date-time forms (without an offset: UTC).
fn timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    const FORMATS: [&str; 12] = [
        "%F %T%.f",
        "%F %R",
        "%F %RZ",
        "%F %R%:z",
        "%F %T%.fZ",
        "%F %T%.f%:z",
        "%FT%R",
        "%FT%RZ",
        "%FT%R%:z",
        "%FT%T%.f",
        "%FT%T%.fZ",
        "%FT%T%.f%:z",
    ];
    FORMATS.iter().find_map(|f| {
        DateTime::parse_from_str(s, f).ok().or_else(|| {
            NaiveDateTime::parse_from_str(s, f)
                .ok()
                .map(|t| t.and_utc().fixed_offset())
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sea_orm::{ColumnTrait, ColumnType, EntityTrait, IdenStatic, Iterable};

    #[test]
    fn declared_types_choose_the_decoding() {
        assert_eq!(Kind::of(Some("integer")), Kind::Integer);
        assert_eq!(Kind::of(Some("BIGINT")), Kind::Integer);
        assert_eq!(Kind::of(Some("boolean")), Kind::Bool);
        assert_eq!(
            Kind::of(Some("timestamp_with_timezone_text")),
            Kind::Timestamp
        );
        assert_eq!(Kind::of(Some("date_text")), Kind::Date);
        assert_eq!(Kind::of(Some("varchar")), Kind::Text);
        assert_eq!(Kind::of(Some("text")), Kind::Text);
        assert_eq!(Kind::of(None), Kind::Any);
    }

    /// QA s24a F2: kept to the microsecond, as PostgreSQL keeps them.
    #[test]
    fn timestamps_are_written_to_the_microsecond() {
        let t = Utc.with_ymd_and_hms(2026, 12, 5, 7, 40, 48).unwrap()
            + chrono::Duration::nanoseconds(690_696_967);
        assert_eq!(rfc3339(&t), "2026-12-05T07:40:48.690696+00:00");
        let whole = Utc.with_ymd_and_hms(2026, 12, 5, 7, 40, 48).unwrap();
        assert_eq!(rfc3339(&whole), "2026-12-05T07:40:48+00:00");
    }

    #[test]
    fn timestamps_read_in_every_form_sqlite_writes() {
        let want = Utc.with_ymd_and_hms(2026, 12, 1, 8, 30, 0).unwrap();
        for s in [
            "2026-12-01T08:30:00+00:00",
            "2026-12-01T16:30:00+08:00",
            "2026-12-01 08:30:00",
            "2026-12-01 08:30",
            "2026-12-01T08:30:00Z",
        ] {
            assert_eq!(
                timestamp(s).map(|t| t.with_timezone(&Utc)),
                Some(want),
                "{s}"
            );
        }
        assert_eq!(timestamp("yesterday"), None);
    }

    #[test]
    fn values_bind_as_sqlx_binds_them() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 8, 30, 0).unwrap();
        assert_eq!(
            bind(&Value::ChronoDateTimeUtc(Some(t))).unwrap(),
            Sql::Text("2026-12-01T08:30:00+00:00".into())
        );
        assert_eq!(bind(&Value::Bool(Some(true))).unwrap(), Sql::Integer(1));
        assert_eq!(bind(&Value::String(None)).unwrap(), Sql::Null);
        let d = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(
            bind(&Value::ChronoDate(Some(d))).unwrap(),
            Sql::Text("2026-03-09".into())
        );
        assert!(bind(&Value::BigUnsigned(Some(u64::MAX))).is_err());
    }

    /// Every column of every entity has a type the writer decodes exactly (see the
    /// module documentation): a 32-bit integer or a timestamp without a time zone would
    /// come back as another type and fail to read.
    #[test]
    fn entity_columns_decode_exactly() {
        use crate::entities::*;
        fn check<E: EntityTrait>(bad: &mut Vec<String>) {
            for c in E::Column::iter() {
                let ok = matches!(
                    c.def().get_column_type(),
                    ColumnType::BigInteger
                        | ColumnType::Boolean
                        | ColumnType::TimestampWithTimeZone
                        | ColumnType::Date
                        | ColumnType::String(_)
                        | ColumnType::Text
                        | ColumnType::Char(_)
                );
                if !ok {
                    bad.push(format!(
                        "{}.{}: {:?}",
                        E::default().table_name(),
                        c.as_str(),
                        c.def().get_column_type()
                    ));
                }
            }
        }
        let mut bad = Vec::new();
        check::<account::Entity>(&mut bad);
        check::<attendance_sheet::Entity>(&mut bad);
        check::<audit::Entity>(&mut bad);
        check::<auth_token::Entity>(&mut bad);
        check::<blob::Entity>(&mut bad);
        check::<device::Entity>(&mut bad);
        check::<device_anomaly::Entity>(&mut bad);
        check::<field_change::Entity>(&mut bad);
        check::<helper::Entity>(&mut bad);
        check::<household::Entity>(&mut bad);
        check::<jurisdiction::Entity>(&mut bad);
        check::<pairing::Entity>(&mut bad);
        check::<policy::Entity>(&mut bad);
        check::<record::Entity>(&mut bad);
        check::<record_blob::Entity>(&mut bad);
        check::<record_review::Entity>(&mut bad);
        check::<sync_counter::Entity>(&mut bad);
        check::<upload::Entity>(&mut bad);
        check::<visit_fact::Entity>(&mut bad);
        assert!(
            bad.is_empty(),
            "columns the SQLite writer cannot decode exactly: {bad:?}"
        );
    }
}
