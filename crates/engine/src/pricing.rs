//! What tokens cost: a price table per model family, in whole millionths of a dollar.
//!
//! Providers price per million tokens, input and output apart, and some price sound apart from
//! the rest of the input (Gemini). A price is kept as micro-dollars per million tokens, so the
//! cost of `n` tokens is `n × price / 10⁶` micro-dollars: integers all the way, rounded up per
//! attempt, so a day's or a month's total is the exact sum of its jobs.
//!
//! A model is priced by the longest family pattern its name contains (`gemini-2.5-flash-lite`
//! is a `flash-lite`, not a `flash`), for its storyteller; models on this machine (Ollama, a
//! local OpenAI-compatible server) cost nothing unless the person says otherwise. The table's
//! defaults are the providers' list prices when this build was made; the settings replace any
//! of them.

use crate::job::Usage;
use serde::{Deserialize, Serialize};

/// The price of one model family, per million tokens, in US dollars.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    /// The storyteller (`gemini`, `openai`, `ollama`).
    pub storyteller: String,
    /// What a model's name contains to be of this family (`flash`, `pro`, `gpt-4o-mini`);
    /// empty for every model of the storyteller.
    pub family: String,
    /// Dollars per million input tokens (text, images, video frames).
    pub input_per_million: f64,
    /// Dollars per million input tokens of sound, where the provider prices it apart.
    pub audio_input_per_million: Option<f64>,
    /// Dollars per million output tokens.
    pub output_per_million: f64,
}

/// Micro-dollars per million tokens for `dollars` per million (never negative).
fn micro(dollars: f64) -> u64 {
    if dollars.is_finite() && dollars > 0.0 {
        (dollars * 1e6).round() as u64
    } else {
        0
    }
}

/// The cost of `tokens` at `price_micro` micro-dollars per million, rounded up.
fn cost_of(tokens: u64, price_micro: u64) -> u64 {
    let product = u128::from(tokens) * u128::from(price_micro);
    u64::try_from(product.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

impl ModelPrice {
    fn new(storyteller: &str, family: &str, input: f64, audio: Option<f64>, output: f64) -> Self {
        ModelPrice {
            storyteller: storyteller.into(),
            family: family.into(),
            input_per_million: input,
            audio_input_per_million: audio,
            output_per_million: output,
        }
    }

    /// What `usage`'s tokens cost at this price, in micro-dollars.
    pub fn cost(&self, usage: &Usage) -> u64 {
        let audio = usage.audio_input_tokens.min(usage.input_tokens);
        let (other, audio_price) = match self.audio_input_per_million {
            Some(price) => (usage.input_tokens - audio, micro(price)),
            None => (usage.input_tokens, 0),
        };
        let audio_cost = if self.audio_input_per_million.is_some() {
            cost_of(audio, audio_price)
        } else {
            0
        };
        cost_of(other, micro(self.input_per_million))
            .saturating_add(audio_cost)
            .saturating_add(cost_of(usage.output_tokens, micro(self.output_per_million)))
    }
}

/// Prices by storyteller and model family.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    prices: Vec<ModelPrice>,
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable::new(PriceTable::defaults())
    }
}

impl PriceTable {
    /// A table of `prices`.
    pub fn new(prices: Vec<ModelPrice>) -> Self {
        PriceTable { prices }
    }

    /// The list prices this build knows (US dollars per million tokens, paid tier).
    pub fn defaults() -> Vec<ModelPrice> {
        vec![
            ModelPrice::new("gemini", "", 0.30, Some(1.00), 2.50),
            ModelPrice::new("gemini", "flash", 0.30, Some(1.00), 2.50),
            ModelPrice::new("gemini", "flash-lite", 0.10, Some(0.30), 0.40),
            ModelPrice::new("gemini", "pro", 1.25, None, 10.00),
            ModelPrice::new("gemini", "gemini-3-pro", 2.00, None, 12.00),
            ModelPrice::new("openai", "gpt-4o", 2.50, None, 10.00),
            ModelPrice::new("openai", "gpt-4o-mini", 0.15, None, 0.60),
            // Ollama's models run on this machine (or the person's own server): no bill.
            ModelPrice::new("ollama", "", 0.0, None, 0.0),
            ModelPrice::new("openai", "gpt-4.1", 2.00, None, 8.00),
            ModelPrice::new("openai", "gpt-4.1-mini", 0.40, None, 1.60),
        ]
    }

    /// This table with `overrides` in place of the prices of the same storyteller and family.
    pub fn with(mut self, overrides: &[ModelPrice]) -> Self {
        for price in overrides {
            self.prices
                .retain(|p| !(p.storyteller == price.storyteller && p.family == price.family));
            self.prices.push(price.clone());
        }
        self
    }

    /// Every price, as the settings show them.
    pub fn prices(&self) -> &[ModelPrice] {
        &self.prices
    }

    /// The price of `model` told by `storyteller`: the longest family its name contains.
    pub fn price(&self, storyteller: &str, model: &str) -> Option<&ModelPrice> {
        let model = model.to_ascii_lowercase();
        self.prices
            .iter()
            .filter(|p| p.storyteller == storyteller && model.contains(&p.family))
            .max_by_key(|p| p.family.len())
    }

    /// `usage` with its cost filled in from this table (unchanged for an unpriced model: a
    /// model on this machine costs nothing).
    pub fn priced(&self, storyteller: &str, model: &str, usage: &Usage) -> Usage {
        let cost = self
            .price(storyteller, model)
            .map(|price| price.cost(usage))
            .unwrap_or(usage.cost_micro_usd);
        Usage {
            cost_micro_usd: cost,
            ..usage.clone()
        }
    }
}

/// The most a storyteller may spend, in micro-dollars: per local day and per calendar month
/// (`None`: no cap). Reaching either pauses it until the day or the month is over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpendingCap {
    /// Per local day.
    pub per_day_micro_usd: Option<u64>,
    /// Per calendar month.
    pub per_month_micro_usd: Option<u64>,
}

impl SpendingCap {
    /// Whether any cap is set.
    pub fn is_set(&self) -> bool {
        self.per_day_micro_usd.is_some() || self.per_month_micro_usd.is_some()
    }
}

/// Money for people: `$0.0031`, `$1.25`, `$0` (micro-dollars in).
pub fn dollars(micro_usd: u64) -> String {
    if micro_usd == 0 {
        return "$0".into();
    }
    let dollars = micro_usd as f64 / 1e6;
    if dollars >= 1.0 {
        format!("${dollars:.2}")
    } else if dollars >= 0.01 {
        format!("${dollars:.3}")
    } else {
        format!("${dollars:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, audio: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            audio_input_tokens: audio,
            output_tokens: output,
            cost_micro_usd: 0,
        }
    }

    #[test]
    fn the_longest_family_prices_a_model() {
        let table = PriceTable::default();
        let price = |model| table.price("gemini", model).map(|p| p.family.as_str());
        assert_eq!(price("gemini-2.5-flash-lite"), Some("flash-lite"));
        assert_eq!(price("gemini-flash-latest"), Some("flash"));
        assert_eq!(price("gemini-pro-latest"), Some("pro"));
        assert_eq!(price("gemini-3-pro-preview"), Some("gemini-3-pro"));
        assert_eq!(price("something-new"), Some(""));
        // Ollama's models cost nothing, and a storyteller with no table has no price.
        assert_eq!(
            table.price("ollama", "llava").map(|p| p.output_per_million),
            Some(0.0)
        );
        assert!(table.price("offline", "offline-analyser-4").is_none());
        assert_eq!(
            table
                .price("openai", "gpt-4o-mini-2024")
                .map(|p| p.family.as_str()),
            Some("gpt-4o-mini")
        );
    }

    #[test]
    fn costs_are_whole_micro_dollars_with_sound_priced_apart() {
        let flash = ModelPrice::new("gemini", "flash", 0.30, Some(1.00), 2.50);
        // 9,120 input of which 960 sound, 412 output:
        // 8,160 × 0.30 + 960 × 1.00 + 412 × 2.50 = 2,448 + 960 + 1,030 micro-dollars.
        assert_eq!(flash.cost(&usage(9_120, 960, 412)), 4_438);
        let pro = ModelPrice::new("gemini", "pro", 1.25, None, 10.0);
        assert_eq!(pro.cost(&usage(1_000_000, 5, 0)), 1_250_000);
        // Rounded up: a single token is never free.
        assert_eq!(pro.cost(&usage(1, 0, 0)), 2);
        assert_eq!(pro.cost(&usage(0, 0, 0)), 0);
        // Huge counts saturate instead of wrapping.
        assert_eq!(
            pro.cost(&usage(u64::MAX, 0, u64::MAX)),
            u64::MAX,
            "no overflow"
        );
    }

    #[test]
    fn overrides_replace_their_family_and_local_models_are_free() {
        let table =
            PriceTable::default().with(&[ModelPrice::new("gemini", "flash", 1.0, None, 1.0)]);
        let priced = table.priced("gemini", "gemini-flash-latest", &usage(1_000, 100, 1_000));
        assert_eq!(priced.cost_micro_usd, 2_000);
        let local = table.priced("ollama", "llava", &usage(1_000, 0, 1_000));
        assert_eq!(local.cost_micro_usd, 0);
        assert_eq!(dollars(4_438), "$0.0044");
        assert_eq!(dollars(1_250_000), "$1.25");
        assert_eq!(dollars(0), "$0");
    }
}
