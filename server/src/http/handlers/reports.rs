//! Attendance reports: the second helper's sheet (and its submission), the town and
//! county reports, drill-down to records, and "has issues" feedback.

use actix_web::{HttpResponse, web};
use bangfu_shared::report::{AttendanceSheet, Quarter, RecordLine, SheetSubmission};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::NoQuery;
use crate::http::extract::{Json, Query};
use crate::http::shared_runs::Rendered;
use crate::report_files::{self, Table};
use crate::services::cpu_slots::CpuSlots;
use crate::services::{Caller, attendance, reports};

/// `format=json|csv|xlsx|pdf`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    #[default]
    Json,
    Csv,
    Xlsx,
    Pdf,
}

async fn respond<T: Serialize>(
    value: &T,
    tables: impl FnOnce(&T) -> Vec<Table>,
    format: ReportFormat,
    name: &str,
) -> ApiResult<HttpResponse> {
    Ok(render(value, tables, format, name).await?.response())
}

/// A report in `format`, as the bytes sent.
async fn render<T: Serialize>(
    value: &T,
    tables: impl FnOnce(&T) -> Vec<Table>,
    format: ReportFormat,
    name: &str,
) -> ApiResult<Rendered> {
    let file = |ct: &str, ext: &str, body: Vec<u8>| Rendered {
        content_type: ct.to_string(),
        filename: Some(format!("{name}.{ext}")),
        body,
    };
    Ok(match format {
        ReportFormat::Json => Rendered {
            content_type: "application/json".into(),
            filename: None,
            body: serde_json::to_vec(value)
                .map_err(|e| ApiError::Internal(format!("writing a report: {e}")))?,
        },
        ReportFormat::Csv => {
            let tables = tables(value);
            let bytes = rendered(move || report_files::to_csv(&tables)).await?;
            file("text/csv; charset=utf-8", "csv", bytes)
        }
        ReportFormat::Xlsx => {
            let tables = tables(value);
            let bytes = rendered(move || report_files::to_xlsx(&tables)).await?;
            file(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx",
                bytes,
            )
        }
        ReportFormat::Pdf => {
            let tables = tables(value);
            let bytes = rendered(move || crate::report_pdf::to_pdf(&tables, None)).await?;
            file("application/pdf", "pdf", bytes)
        }
    })
}

/// Renders a report file on a blocking thread: a county's spreadsheet or PDF takes
/// long enough that, on an HTTP worker, it would hold up every sync request that
/// worker serves.
async fn rendered(
    render: impl FnOnce() -> ApiResult<Vec<u8>> + Send + 'static,
) -> ApiResult<Vec<u8>> {
    tokio::task::spawn_blocking(render)
        .await
        .map_err(|e| ApiError::Internal(format!("rendering a report: {e}")))?
}

/// Query of the sheet endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SheetQuery {
    /// The second helper (defaults to the caller's own helper: a second helper's own
    /// sheet; a first helper keeps none and is refused with 403).
    pub second_helper: Option<i64>,
    /// `2026Q1`.
    #[param(value_type = String)]
    pub quarter: Quarter,
    pub format: Option<ReportFormat>,
    /// A submitted version: the sheet as that version froze it, with its signature,
    /// instead of the data as it stands now.
    pub version: Option<i32>,
}

#[utoipa::path(get, path = "/api/v1/reports/attendance", params(SheetQuery), responses((status = 200, body = AttendanceSheet), (status = 403, description = "forbidden: a first helper, who keeps no sheet"), (status = 503, description = "pdf_font_missing: format=pdf and the server has no Chinese font installed")))]
/// The second helper's quarterly attendance sheet (附件3): the data as it stands now, or
/// with `version=N` that submitted version as frozen.
pub async fn attendance(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<SheetQuery>,
) -> ApiResult<HttpResponse> {
    let helper = q
        .second_helper
        .or(caller.helper_id)
        .ok_or_else(|| ApiError::BadRequest("name the second helper (second_helper=ID)".into()))?;
    // Only a frozen version is printed with a version and a device signature: live data
    // after a submission is not what was signed, and is labelled as current data.
    // An office sees a version's rows of its own households only; the signature covers
    // all `signed_rows`, and a printout of a part says so.
    if let Some(v) = q.version.filter(|v| *v < 1) {
        return Err(ApiError::BadRequest(format!(
            "version: submitted versions count from 1, got {v}"
        )));
    }
    let (sheet, signature, signed_rows) = match q.version {
        Some(v) => {
            let frozen = reports::sheet_version(&state.db, &caller, helper, q.quarter, v).await?;
            (frozen.sheet, Some(frozen.signature), frozen.signed_rows)
        }
        None => {
            let sheet = reports::sheet(&state.db, &caller, helper, q.quarter).await?;
            let rows = sheet.rows.len();
            (sheet, None, rows)
        }
    };
    let name = match q.version {
        Some(v) => format!("attendance-{}-v{v}", q.quarter),
        None => format!("attendance-{}", q.quarter),
    };
    if q.format == Some(ReportFormat::Pdf) {
        let printed = sheet.clone();
        let bytes = rendered(move || {
            crate::report_pdf::sheet_part_pdf(&printed, signature.as_deref(), signed_rows)
        })
        .await?;
        return Ok(HttpResponse::Ok()
            .content_type("application/pdf")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{name}.pdf\""),
            ))
            .body(bytes));
    }
    let frozen = signature.is_some();
    let tables = move |s: &AttendanceSheet| -> Vec<Table> {
        if frozen {
            report_files::submitted_part_tables(s, signed_rows)
        } else {
            report_files::sheet_tables(s)
        }
    };
    respond(&sheet, tables, q.format.unwrap_or_default(), &name).await
}

#[utoipa::path(get, path = "/api/v1/reports/attendance/versions", params(SheetQuery), responses((status = 200, body = Vec<AttendanceSheet>), (status = 403, description = "forbidden: a first helper, who keeps no sheet")))]
/// Every submitted version of a sheet.
pub async fn versions(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<SheetQuery>,
) -> ApiResult<web::Json<Vec<AttendanceSheet>>> {
    // The list is JSON only; each version prints as a file from `/reports/attendance`.
    if q.format.is_some_and(|f| !matches!(f, ReportFormat::Json)) {
        return Err(ApiError::BadRequest(
            "the versions list is JSON only: for a version as csv, xlsx or pdf use \
             /reports/attendance?second_helper=…&quarter=…&version=N&format=…"
                .into(),
        ));
    }
    let helper = q
        .second_helper
        .or(caller.helper_id)
        .ok_or_else(|| ApiError::BadRequest("name the second helper (second_helper=ID)".into()))?;
    let mut versions = reports::sheet_versions(&state.db, &caller, helper, q.quarter).await?;
    if let Some(v) = q.version {
        versions.retain(|s| s.submitted_version == Some(v));
    }
    Ok(web::Json(versions))
}

#[utoipa::path(post, path = "/api/v1/reports/attendance/submit", request_body = SheetSubmission, responses((status = 201, body = AttendanceSheet), (status = 422, body = bangfu_shared::api::ErrorBody, description = "invalid: a bad signature, or a remark for a household not on the sheet, a second one for a household, or one over 500 characters")))]
/// A second helper submits the sheet with remarks, signed by the device key.
pub async fn submit(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<SheetSubmission>,
    _query: NoQuery,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Created().json(reports::submit(&state.db, &caller, &body).await?))
}

/// Query of the town report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TownQuery {
    pub town: Option<i64>,
    #[param(value_type = String)]
    pub quarter: Quarter,
    pub format: Option<ReportFormat>,
}

#[utoipa::path(get, path = "/api/v1/reports/town", params(TownQuery), responses((status = 200, body = bangfu_shared::report::TownReport)))]
/// The town office's quarterly report.
pub async fn town(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<TownQuery>,
) -> ApiResult<HttpResponse> {
    let town = reports::town_report_target(&state.db, &caller, q.town, q.quarter).await?;
    let (db, quarter, format) = (state.db.clone(), q.quarter, q.format.unwrap_or_default());
    let key = format!("town|{town}|{quarter}|{format:?}");
    Ok(state
        .shared_runs
        .run_once(key, async move {
            let _slot = CpuSlots::office_reads().hold().await?;
            let report = reports::town_report(&db, &caller, Some(town), quarter).await?;
            let name = format!("town-{quarter}");
            render(&report, report_files::town_tables, format, &name).await
        })
        .await)
}

/// Query of the county report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CountyQuery {
    pub county: Option<i64>,
    #[param(value_type = String)]
    pub quarter: Quarter,
    pub format: Option<ReportFormat>,
}

#[utoipa::path(get, path = "/api/v1/reports/county", params(CountyQuery), responses((status = 200, body = bangfu_shared::report::CountyReport)))]
/// The county office's report: towns ranked by 到位率, escalations by unit.
pub async fn county(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<CountyQuery>,
) -> ApiResult<HttpResponse> {
    let county = reports::county_report_target(&state.db, &caller, q.county, q.quarter).await?;
    let (db, quarter, format) = (state.db.clone(), q.quarter, q.format.unwrap_or_default());
    let key = format!("county|{county}|{quarter}|{format:?}");
    Ok(state
        .shared_runs
        .run_once(key, async move {
            let _slot = CpuSlots::office_reads().hold().await?;
            let report = reports::county_report(&db, &caller, Some(county), quarter).await?;
            let name = format!("county-{quarter}");
            render(&report, report_files::county_tables, format, &name).await
        })
        .await)
}

/// Query of the drill-down.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    pub household: i64,
    #[param(value_type = String)]
    pub quarter: Quarter,
}

/// A record line with the photos behind it (`GET /api/v1/blobs/{sha256}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DrillDownLine {
    #[serde(flatten)]
    pub line: RecordLine,
    /// Every image behind the record, by SHA-256, in the order stored: its photos, and
    /// the household's (or witness's) signature image when there is one. `photo_count`
    /// counts the photos alone.
    pub photos: Vec<String>,
    pub review: Vec<(String, Option<String>)>,
}

#[utoipa::path(get, path = "/api/v1/reports/records", params(RecordsQuery), responses((status = 200, body = Vec<DrillDownLine>)))]
/// Drill-down: every visit and call of a household in a quarter, counted or not and why,
/// and those of the quarter before that met a window judged in this one.
pub async fn records(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<RecordsQuery>,
) -> ApiResult<web::Json<Vec<DrillDownLine>>> {
    reports::require_begun(q.quarter, "it has no visits yet")?;
    let (from, to) = attendance::quarter_range(q.quarter);
    let detail =
        crate::services::households::detail_for_days(&state.db, &caller, q.household, from, to)
            .await?;
    let rec = attendance::reconcile(
        &state.db,
        sea_orm::Condition::all().add(sea_orm::ColumnTrait::eq(
            &crate::entities::household::Column::Id,
            detail.summary.id,
        )),
        from,
        to,
    )
    .await?;
    let h = rec
        .households
        .first()
        .ok_or(ApiError::NotFound("household"))?;
    let late_after =
        reports::last_submission_for(&state.db, &rec.pairings, h.id, q.quarter).await?;
    let lines = attendance::record_lines(
        &state.db,
        &mut attendance::Policies::default(),
        std::slice::from_ref(h),
        &rec.pairings,
        attendance::evidence_from(&rec.windows, from, to),
        to,
        late_after,
    )
    .await?;
    let judged = || {
        rec.windows
            .iter()
            .filter(|w| (from..=to).contains(&w.result.end))
    };
    // A helper reads their own records and those of days they were paired with the
    // household, not those of the helpers after or before them (QA s25b F1).
    let me = caller.helper_id.filter(|_| caller.role.is_helper());
    let days = me.map(|me| crate::services::households::paired_days(&detail, me));
    let readable = |l: &RecordLine| match (me, &days) {
        (Some(me), Some(days)) => {
            l.helper_id == me
                || days
                    .iter()
                    .any(|(f, t)| *f <= l.date && t.is_none_or(|t| l.date < t))
        }
        _ => true,
    };
    let mut out = Vec::new();
    for line in lines
        .into_iter()
        .filter(|l| attendance::line_shown(l, from, judged()))
        .filter(|l| readable(l))
    {
        let photos = crate::services::sync::blobs_of(&state.db, &line.record_id).await?;
        let review = reports::review_history(&state.db, &line.record_id).await?;
        out.push(DrillDownLine {
            line,
            photos,
            review,
        });
    }
    Ok(web::Json(out))
}

/// Body of `POST /records/{id}/review`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub reason: String,
}

#[utoipa::path(post, path = "/api/v1/records/{id}/review", params(("id" = String, Path, description = "the record's id (a UUID)")), request_body = ReviewBody, responses((status = 204), (status = 404, body = bangfu_shared::api::ErrorBody)))]
/// Marks a record "has issues"; the helper sees the reason after the next sync.
pub async fn review(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Json<ReviewBody>,
    _query: NoQuery,
) -> ApiResult<HttpResponse> {
    reports::mark_has_issues(&state.db, &caller, &id, &body.reason).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/records/{id}/review/cancel", params(("id" = String, Path, description = "the record's id (a UUID)")), request_body = ReviewBody, responses((status = 204), (status = 404, body = bangfu_shared::api::ErrorBody), (status = 409, description = "conflict: the record has no mark standing")))]
/// Withdraws the record's standing "has issues" mark, with a reason: the helper's device
/// drops the note at its next sync.
pub async fn cancel_review(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: Json<ReviewBody>,
    _query: NoQuery,
) -> ApiResult<HttpResponse> {
    reports::withdraw_mark(&state.db, &caller, &id, &body.reason).await?;
    Ok(HttpResponse::NoContent().finish())
}
