//! What telling a set of videos will cost and take, worked out before anything is queued or
//! sent: each video is probed (its length, its sound), its storyteller says how many tokens a
//! video like it takes and in how many requests ([`Storyteller::estimate`]), the price table
//! prices them, and the time comes from the storyteller's pace (requests at once, a minute and
//! a day) and how long its videos took here before (else its own guess, which counts the
//! transcript and the keyframes described one at a time where those are made).

use crate::intake::Refusal;
use crate::job::{JobState, StorySpec};
use crate::media::Media;
use crate::pricing::PriceTable;
use crate::store::{JobFilter, JobStore};
use crate::storyteller::Storyteller;
use crate::wire::{display_path, AddEntry, EstimateReport, ListOrder, VideoEstimate};
use std::path::PathBuf;
use std::sync::Arc;

/// How many of a storyteller's latest stories tell how long one takes.
const HISTORY: u64 = 20;
/// Files probed at once.
const PROBES_AT_ONCE: usize = 4;

/// Everything an estimate reads.
pub struct EstimateInputs<'a> {
    /// The store, for how long this storyteller's videos took before.
    pub store: &'a dyn JobStore,
    /// Who would tell them.
    pub teller: Arc<dyn Storyteller>,
    /// With which model and preset.
    pub spec: StorySpec,
    /// The prices.
    pub prices: PriceTable,
    /// ffprobe.
    pub media: Media,
    /// Jobs at once in the pool.
    pub concurrency: usize,
}

/// The estimate for `videos` (and the paths `refused` before).
pub async fn estimate(
    inputs: EstimateInputs<'_>,
    videos: Vec<PathBuf>,
    refused: Vec<Refusal>,
) -> crate::Result<EstimateReport> {
    let EstimateInputs {
        store,
        teller,
        spec,
        prices,
        media,
        concurrency,
    } = inputs;
    let has_price = prices.price(&spec.storyteller, &spec.model).is_some();

    // Probed a few at a time, the answers kept in the order given.
    let mut probes = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(PROBES_AT_ONCE));
    for (index, path) in videos.iter().cloned().enumerate() {
        let media = media.clone();
        let limit = limit.clone();
        probes.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (index, path.clone(), media.probe(&path).await)
        });
    }
    let mut probed = Vec::with_capacity(videos.len());
    while let Some(joined) = probes.join_next().await {
        if let Ok(answer) = joined {
            probed.push(answer);
        }
    }
    probed.sort_by_key(|(index, _, _)| *index);

    let mut estimates = Vec::with_capacity(probed.len());
    let mut guessed_secs = Vec::new();
    for (_, path, info) in probed {
        match info {
            Ok(info) => {
                let guess = crate::storyteller::with_style(
                    teller.estimate(&info, &spec.model, &spec.preset),
                    &spec.style,
                );
                let usage = prices.priced(&spec.storyteller, &spec.model, &guess.usage);
                guessed_secs.push(teller.typical_secs(&info, &spec.model));
                estimates.push(VideoEstimate {
                    path: display_path(&path),
                    duration_secs: Some(info.duration_secs),
                    input_tokens: usage.input_tokens as f64,
                    audio_input_tokens: usage.audio_input_tokens as f64,
                    output_tokens: usage.output_tokens as f64,
                    cost_usd: usage.cost_usd(),
                    requests: guess.requests,
                    note: guess.note,
                    error: None,
                });
            }
            Err(error) => estimates.push(VideoEstimate {
                path: display_path(&path),
                duration_secs: None,
                input_tokens: 0.0,
                audio_input_tokens: 0.0,
                output_tokens: 0.0,
                cost_usd: 0.0,
                requests: 0,
                note: None,
                error: Some(error.to_string()),
            }),
        }
    }

    let told_before = store
        .list(JobFilter {
            state: Some(JobState::Succeeded),
            storyteller: Some(spec.storyteller.clone()),
            order: ListOrder::NewestFirst,
            limit: Some(HISTORY),
            ..JobFilter::default()
        })
        .await?;
    let took: Vec<f64> = told_before
        .iter()
        .filter(|job| !job.cached)
        .filter_map(|job| Some((job.finished_at_ms? - job.started_at_ms?) as f64 / 1000.0))
        .filter(|secs| *secs >= 0.0)
        .collect();
    let (per_video, from) = if took.is_empty() {
        let mean = guessed_secs.iter().sum::<f64>() / guessed_secs.len().max(1) as f64;
        (
            mean,
            format!("a guess, as {} has told nothing here yet", spec.storyteller),
        )
    } else {
        (
            took.iter().sum::<f64>() / took.len() as f64,
            format!(
                "the {} latest stories {} told here",
                took.len(),
                spec.storyteller
            ),
        )
    };
    let count = guessed_secs.len();
    let capacity = teller.capacity();
    let at_once = capacity
        .concurrent
        .map_or(concurrency, |c| (c as usize).min(concurrency))
        .max(1);
    let by_workers = count.div_ceil(at_once) as f64 * per_video;
    // The service's limits count requests, and a video told one image at a time takes several.
    let requests_in_all: usize = estimates
        .iter()
        .filter(|v| v.error.is_none())
        .map(|v| v.requests.max(1) as usize)
        .sum();
    let windows = |limit: Option<u32>, window_secs: f64| {
        limit.map_or(0.0, |limit| {
            requests_in_all
                .saturating_sub(1)
                .div_euclid(limit.max(1) as usize) as f64
                * window_secs
                + per_video
        })
    };
    let by_minute = windows(capacity.per_minute, 60.0);
    let by_day = windows(capacity.per_day, 24.0 * 3600.0);
    let expected_secs = if count == 0 {
        0.0
    } else {
        by_workers.max(by_minute).max(by_day)
    };
    let mut time_basis = format!(
        "{at_once} at once, about {} s a video ({from})",
        per_video.round()
    );
    if requests_in_all > count {
        time_basis.push_str(&format!(", {requests_in_all} requests in all"));
    }
    if let Some(per_minute) = capacity.per_minute {
        time_basis.push_str(&format!(", at most {per_minute} requests a minute"));
    }
    if let Some(per_day) = capacity.per_day.filter(|d| requests_in_all > *d as usize) {
        time_basis.push_str(&format!(
            ", at most {per_day} a day, so some wait for the next day"
        ));
    }

    let requests = estimates.iter().map(|v| v.requests).sum();
    let input_tokens: f64 = estimates.iter().map(|v| v.input_tokens).sum();
    let output_tokens: f64 = estimates.iter().map(|v| v.output_tokens).sum();
    Ok(EstimateReport {
        // A storyteller that spends no tokens (the offline one) costs nothing, price or not.
        priced: has_price || input_tokens + output_tokens == 0.0,
        input_tokens,
        output_tokens,
        cost_usd: estimates.iter().map(|v| v.cost_usd).sum(),
        storyteller: spec.storyteller,
        model: spec.model,
        preset: spec.preset,
        videos: estimates,
        refused: refused.into_iter().map(AddEntry::from).collect(),
        requests,
        expected_secs,
        time_basis,
    })
}
