//! The few server calls the offline client makes at login (REST `/api/v1`, JSON).
//!
//! Plain HTTP is accepted: the server sits on a county intranet or on loopback. Every
//! error the server sends is an `ErrorBody`; it reaches the helper as its message.

use std::time::Duration;

use bangfu_shared::api::{
    DeviceDto, EnrollRequest, ErrorBody, LoginRequest, LoginResponse, Me, RegisterDevice, Snapshot,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ClientError, Result};

/// A client for one server, with the bearer token once logged in.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ApiClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Field {
                field: "server",
                message: format!("`{base}` is not an http:// URL"),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Network(e.to_string()))?;
        Ok(ApiClient {
            http,
            base,
            token: None,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Uses `token` for the calls that follow.
    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse> {
        self.post(
            "/api/v1/auth/login",
            &LoginRequest {
                username: username.into(),
                password: password.into(),
            },
        )
        .await
    }

    /// `POST /api/v1/auth/enroll`: first login with the town office's one-time code.
    pub async fn enroll(
        &self,
        username: &str,
        code: &str,
        new_password: &str,
    ) -> Result<LoginResponse> {
        let body = EnrollRequest {
            username: username.into(),
            code: code.into(),
            new_password: new_password.into(),
        };
        self.post("/api/v1/auth/enroll", &body).await
    }

    /// `GET /api/v1/me`.
    pub async fn me(&self) -> Result<Me> {
        self.get("/api/v1/me").await
    }

    /// `POST /api/v1/devices`: binds this device's public key to the account.
    pub async fn register_device(&self, public_key: &str, label: &str) -> Result<DeviceDto> {
        self.post(
            "/api/v1/devices",
            &RegisterDevice {
                public_key: public_key.into(),
                label: label.into(),
            },
        )
        .await
    }

    /// `GET /api/v1/me/snapshot`: the account's households, pairings and policy.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        self.get("/api/v1/me/snapshot").await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn send<T: DeserializeOwned>(&self, mut req: reqwest::RequestBuilder) -> Result<T> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Network(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Network(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Network(format!("unexpected answer from the server: {e}"))
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => ClientError::Server {
                status: status.as_u16(),
                code: body.error,
                message: body.message,
            },
            Err(_) => ClientError::Server {
                status: status.as_u16(),
                code: "http_error".into(),
                message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            },
        })
    }
}
