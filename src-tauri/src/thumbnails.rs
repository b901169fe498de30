//! The `thumb:` protocol: `thumb://localhost/HASH/N` is the N-th keyframe thumbnail (from 0)
//! of the video whose content hash is HASH, read by the engine from its thumbnails folder.
//! Nothing else on disk can be named through it.

use crate::shell::Shell;
use tauri::http::{Request, Response, StatusCode};
use tauri::Manager;

/// The answer to one request.
pub async fn answer<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    request: &Request<Vec<u8>>,
) -> Response<Vec<u8>> {
    let mut parts = request.uri().path().trim_matches('/').split('/');
    let (Some(hash), Some(index), None) = (parts.next(), parts.next(), parts.next()) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let Ok(index) = index.parse::<u32>() else {
        return status(StatusCode::BAD_REQUEST);
    };
    let Some(shell) = app.try_state::<Shell>() else {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    let Ok(engine) = shell.engine() else {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    match engine.thumbnail(hash, index).await {
        Ok(Some(bytes)) => Response::builder()
            .header("Content-Type", "image/jpeg")
            .header("Cache-Control", "max-age=31536000, immutable")
            .body(bytes)
            .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR)),
        Ok(None) => status(StatusCode::NOT_FOUND),
        Err(error) => {
            tracing::warn!(%error, "a thumbnail could not be read");
            status(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

fn status(code: StatusCode) -> Response<Vec<u8>> {
    let mut response = Response::new(Vec::new());
    *response.status_mut() = code;
    response
}
