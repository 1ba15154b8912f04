//! Ledger import/export and the enrollment-code sheet.

use actix_web::{HttpRequest, HttpResponse, web};
use bangfu_shared::api::{EnrollmentCode, ImportReport};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{Query, date_in_range};
use crate::ledger::{self, ExportFormat, ImportOptions};
use crate::services::{Caller, enrollment, today};

/// Options of `POST /ledger/import`; the body is the CSV or XLSX file itself.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Only validate and report what would change.
    #[serde(default)]
    pub dry_run: bool,
    /// The county (required for admins; an office imports into its own, and naming
    /// another is 404).
    pub county: Option<i64>,
    /// When new pairings and changes take effect (default today).
    pub effective_from: Option<NaiveDate>,
    /// When the changes were filed with the county office (default today).
    pub filed_on: Option<NaiveDate>,
    /// Why a change of helper is made at short notice.
    pub reason: Option<String>,
    /// A county office confirms a change of helper dated before the current quarter
    /// (ended quarters are judged again by it); refused without.
    #[serde(default)]
    pub retroactive: bool,
}

#[utoipa::path(post, path = "/api/v1/ledger/import", params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "text/csv", description = "the ledger as CSV or XLSX"),
    responses((status = 200, body = ImportReport), (status = 422, body = bangfu_shared::api::ErrorBody, description = "invalid_ledger: every bad row in details"),
        (status = 413, body = bangfu_shared::api::ErrorBody)))]
/// Imports a ledger file all-or-nothing (or reports, with `dry_run`).
pub async fn import(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<ImportQuery>,
    body: web::Payload,
) -> ApiResult<web::Json<ImportReport>> {
    caller.require_office("import a ledger")?;
    refuse_form_upload(&req)?;
    let bytes =
        crate::http::extract::read_body(&req, body, state.settings.max_import_bytes).await?;
    let q = q.into_inner();
    let opts = ImportOptions {
        dry_run: q.dry_run,
        county_id: q.county,
        effective_from: date_in_range(q.effective_from.unwrap_or_else(today), "effective_from")?,
        filed_on: date_in_range(q.filed_on.unwrap_or_else(today), "filed_on")?,
        reason: q.reason,
        retroactive: q.retroactive,
    };
    Ok(web::Json(
        ledger::import(&state.db, &caller, &bytes, &opts).await?,
    ))
}

/// A browser form's upload (`multipart/form-data`, `-F file=@…`) wraps the file in
/// boundaries the ledger reader would report as rows of dashes: say how to send it.
fn refuse_form_upload(req: &HttpRequest) -> ApiResult<()> {
    let form = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // Not `application/x-www-form-urlencoded`: `curl --data-binary` labels the raw
        // file so by default.
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
    if form {
        return Err(ApiError::UnsupportedMediaType(
            "send the ledger file itself as the request body (curl --data-binary @ledger.csv \
             or @ledger.xlsx), not as a form upload"
                .into(),
        ));
    }
    Ok(())
}

/// Options of `GET /ledger/export`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// The town (a town office may leave it out).
    pub town: Option<i64>,
    /// `csv` (default) or `xlsx`.
    pub format: Option<ExportFormat>,
}

#[utoipa::path(get, path = "/api/v1/ledger/export", params(ExportQuery),
    responses((status = 200, description = "the ledger file", content_type = "text/csv"), (status = 404, body = bangfu_shared::api::ErrorBody)))]
/// Exports a town's ledger in the official layout.
pub async fn export(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<ExportQuery>,
) -> ApiResult<HttpResponse> {
    let format = q.format.unwrap_or(ExportFormat::Csv);
    let _slot = crate::services::cpu_slots::CpuSlots::office_reads()
        .hold()
        .await?;
    let bytes = ledger::export(&state.db, &caller, q.town, format).await?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"ledger.{}\"", format.extension()),
        ))
        .body(bytes))
}

/// Options of `POST /enrollment/codes`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CodesQuery {
    pub town: Option<i64>,
    /// One village of the caller's: a town with more helpers awaiting codes than one
    /// request issues (`max_codes_per_request`, 1,000 by default) issues them by village.
    pub village: Option<i64>,
    /// One helper (their id, as `/households` shows it): a new slip for them alone,
    /// cancelling the code they hold; nobody else's code changes.
    pub helper: Option<i64>,
    /// Reprint a lost sheet (the village's, or the town-wide one): new codes for the
    /// helpers whose code that sheet printed, cancelling those, and for helpers holding
    /// none. Without it a request issues codes only to helpers holding none in force, so
    /// asking again never cancels a sheet already handed out.
    pub reissue: Option<bool>,
    /// With `helper`: a code for a helper who has enrolled, to set a new password (a
    /// forgotten one, a lost phone); using it ends all their sessions.
    pub reset: Option<bool>,
    /// `csv` (default, for printing) or `json`.
    pub format: Option<String>,
}

/// How the code sheet is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodesFormat {
    Csv,
    Json,
}

impl CodesFormat {
    /// Checked before any code is issued: issuing cancels every printed code, so a
    /// request that cannot show the new ones must change nothing.
    fn parse(format: Option<&str>) -> ApiResult<CodesFormat> {
        match format.unwrap_or("csv") {
            "csv" => Ok(CodesFormat::Csv),
            "json" => Ok(CodesFormat::Json),
            other => Err(ApiError::BadRequest(format!(
                "format must be csv or json, not {other}"
            ))),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/enrollment/codes", params(CodesQuery),
    responses((status = 200, body = Vec<EnrollmentCode>, description = "JSON, or CSV with format=csv; the `Bangfu-Codes-Held` header says how many helpers were left out for holding a code in force (the CSV ends with a line saying so)"), (status = 400, body = bangfu_shared::api::ErrorBody, description = "bad format, or an admin naming no town, village or helper; no code was changed"), (status = 403, body = bangfu_shared::api::ErrorBody), (status = 404, body = bangfu_shared::api::ErrorBody, description = "no such town, village or helper in the caller's scope"), (status = 422, body = bangfu_shared::api::ErrorBody, description = "no code was changed: more helpers await codes than one request issues (issue by village); a village not in the town named; a helper named who has enrolled, is disabled, is not paired in the village or town named, or is also paired outside the caller's scope")))]
/// Issues fresh one-time enrollment codes for helpers who have not yet set a password.
pub async fn enrollment_codes(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<CodesQuery>,
) -> ApiResult<HttpResponse> {
    let format = CodesFormat::parse(q.format.as_deref())?;
    let within = enrollment::Within {
        town: q.town,
        village: q.village,
        helper: q.helper,
        reissue: q.reissue.unwrap_or(false),
        reset: q.reset.unwrap_or(false),
    };
    let max = Some(state.settings.max_codes_per_request);
    let issued = enrollment::issue(&state.db, &caller, &state.settings, within, max).await?;
    // How many of a village's helpers were left out for holding a code (QA s28c G2).
    let held = ("Bangfu-Codes-Held", issued.held.to_string());
    match format {
        CodesFormat::Json => Ok(HttpResponse::Ok().insert_header(held).json(&issued.codes)),
        CodesFormat::Csv => Ok(HttpResponse::Ok()
            .insert_header(held)
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"enrollment-codes.csv\"",
            ))
            .body(enrollment::to_csv(&issued, enrollment::Asker::Api)?)),
    }
}
