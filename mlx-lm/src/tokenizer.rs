//! Tokenizers of Hugging Face model directories, offline: `tokenizer.json` through the
//! `tokenizers` crate, special tokens and the chat template from `tokenizer_config.json`, EOS ids
//! from `generation_config.json` / `config.json`, and a [`StreamingDetokenizer`] that turns
//! generated ids into text without ever splitting a UTF-8 character.
//!
//! Chat templates are rendered with `minijinja` the way `transformers` renders them with Jinja2:
//! `trim_blocks` and `lstrip_blocks` on, loop controls, `raise_exception(msg)`, a `tojson` filter
//! that writes JSON as Python's `json.dumps(..., ensure_ascii=False)` does (optional `indent`),
//! `strftime_now(fmt)`, Python string and dict methods (`.strip()`, `.startswith()`,
//! `.items()`, ...), and the variables `messages`, `add_generation_prompt`, `tools`,
//! `bos_token`, `eos_token` and the other special tokens.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use minijinja::value::Kwargs;
use minijinja::{Environment, ErrorKind};
use mlx_rs::{Error, Result};
use serde_json::{Map, Value};

/// A model's tokenizer with what generation needs around it.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<tokenizers::Tokenizer>,
    eos_token_ids: Vec<u32>,
    special_tokens: Map<String, Value>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    templates: Vec<(String, String)>,
    detok: Arc<DetokenizerData>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("eos_token_ids", &self.eos_token_ids)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("chat_templates", &self.templates.iter().map(|t| &t.0).collect::<Vec<_>>())
            .finish()
    }
}

fn tok_err(msg: impl Into<String>) -> Error {
    Error::invalid("tokenizer", msg.into())
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| tok_err(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| tok_err(format!("{}: invalid JSON: {e}", path.display())))
}

/// A special token entry of `tokenizer_config.json`: a string or an `AddedToken` object.
fn token_content(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The named chat templates of a `chat_template` value: a string (named `"default"`) or a list
/// of `{name, template}`.
pub fn chat_templates_from_value(v: &Value, file: &str) -> Result<Vec<(String, String)>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![("default".to_string(), s.clone())]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let name = item.get("name").and_then(Value::as_str);
                let template = item.get("template").and_then(Value::as_str);
                match (name, template) {
                    (Some(n), Some(t)) => Ok((n.to_string(), t.to_string())),
                    _ => Err(tok_err(format!(
                        "{file}: `chat_template[{i}]` must be an object with string `name` and `template`"
                    ))),
                }
            })
            .collect(),
        _ => Err(tok_err(format!("{file}: `chat_template` must be a string or a list"))),
    }
}

impl Tokenizer {
    /// Loads the tokenizer of a model directory: `tokenizer.json` (required),
    /// `tokenizer_config.json` (special tokens, chat template), `chat_template.jinja` or
    /// `chat_template.json` (a chat template stored beside it), and the EOS ids of
    /// `generation_config.json` (else `config.json`), joined with the id of the `eos_token`
    /// (mlx-lm's rule). Nothing is fetched from the network.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Tokenizer> {
        let dir = dir.as_ref();
        let tok_path = dir.join("tokenizer.json");
        let tok_text = std::fs::read_to_string(&tok_path)
            .map_err(|e| tok_err(format!("cannot read {}: {e}", tok_path.display())))?;
        let tok_json: Value = serde_json::from_str(&tok_text)
            .map_err(|e| tok_err(format!("{}: invalid JSON: {e}", tok_path.display())))?;
        let inner: tokenizers::Tokenizer =
            tok_text.parse().map_err(|e| tok_err(format!("{}: {e}", tok_path.display())))?;

        let cfg_path = dir.join("tokenizer_config.json");
        let cfg = read_json(&cfg_path)?.unwrap_or(Value::Object(Map::new()));
        let cfg_file = cfg_path.display().to_string();
        let mut special_tokens = Map::new();
        for key in [
            "bos_token",
            "eos_token",
            "unk_token",
            "pad_token",
            "sep_token",
            "cls_token",
            "mask_token",
        ] {
            if let Some(content) = cfg.get(key).and_then(token_content) {
                special_tokens.insert(key.to_string(), Value::String(content));
            }
        }
        if let Some(Value::Array(extra)) = cfg.get("additional_special_tokens") {
            let list: Vec<Value> =
                extra.iter().filter_map(token_content).map(Value::String).collect();
            special_tokens.insert("additional_special_tokens".to_string(), Value::Array(list));
        }
        let bos_token = special_tokens.get("bos_token").and_then(Value::as_str).map(str::to_string);
        let eos_token = special_tokens.get("eos_token").and_then(Value::as_str).map(str::to_string);

        let mut templates = match cfg.get("chat_template") {
            Some(v) => chat_templates_from_value(v, &cfg_file)?,
            None => Vec::new(),
        };
        if templates.is_empty() {
            let jinja = dir.join("chat_template.jinja");
            if jinja.exists() {
                let t = std::fs::read_to_string(&jinja)
                    .map_err(|e| tok_err(format!("cannot read {}: {e}", jinja.display())))?;
                templates.push(("default".to_string(), t));
            } else if let Some(t) = read_json(&dir.join("chat_template.json"))?
                .as_ref()
                .and_then(|v| v.get("chat_template"))
            {
                templates = chat_templates_from_value(t, "chat_template.json")?;
            }
        }

        let gen_path = dir.join("generation_config.json");
        let mut eos: BTreeSet<u32> = BTreeSet::new();
        let mut from_gen = Vec::new();
        // mlx-lm's `load_config`: an unreadable generation config is ignored.
        if let Ok(Some(v)) = read_json(&gen_path) {
            from_gen = crate::config::eos_ids_of(&v, &gen_path.display().to_string())?;
        }
        if from_gen.is_empty() {
            let cfg_path = dir.join("config.json");
            if let Some(v) = read_json(&cfg_path)? {
                from_gen = crate::config::eos_ids_of(&v, &cfg_path.display().to_string())?;
            }
        }
        eos.extend(from_gen);
        if let Some(id) = eos_token.as_deref().and_then(|t| inner.token_to_id(t)) {
            eos.insert(id);
        }

        let detok = Arc::new(DetokenizerData::new(&inner, tok_json.get("decoder")));
        Ok(Tokenizer {
            inner: Arc::new(inner),
            eos_token_ids: eos.into_iter().collect(),
            special_tokens,
            bos_token,
            eos_token,
            templates,
            detok,
        })
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Token ids of `text`; `add_special_tokens` runs the post-processor (e.g. adds BOS).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        self.inner
            .encode(text, add_special_tokens)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| tok_err(format!("encode: {e}")))
    }

    /// The ids of a raw prompt as mlx-lm's `generate` tokenizes it: special tokens added unless
    /// the text already starts with the BOS token.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        let add = self.bos_token.as_deref().is_none_or(|bos| !text.starts_with(bos));
        self.encode(text, add)
    }

    /// The text of `ids`; `skip_special_tokens` drops special tokens.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| tok_err(format!("decode: {e}")))
    }

    /// The vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token string.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The EOS ids, sorted: the configs' `eos_token_id` and the `eos_token`'s id.
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos_token_ids
    }

    /// Whether `id` ends generation.
    pub fn is_eos(&self, id: u32) -> bool {
        self.eos_token_ids.binary_search(&id).is_ok()
    }

    /// Adds an EOS id (e.g. from a command line), keeping the list sorted.
    pub fn add_eos_token_id(&mut self, id: u32) {
        if let Err(pos) = self.eos_token_ids.binary_search(&id) {
            self.eos_token_ids.insert(pos, id);
        }
    }

    /// The BOS token string of `tokenizer_config.json`.
    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    /// The EOS token string of `tokenizer_config.json`.
    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    /// The special tokens of `tokenizer_config.json` by their names (`bos_token`, ...,
    /// `additional_special_tokens`), as the chat template sees them.
    pub fn special_tokens(&self) -> &Map<String, Value> {
        &self.special_tokens
    }

    /// Whether a chat template is available.
    pub fn has_chat_template(&self) -> bool {
        !self.templates.is_empty()
    }

    /// The names of the chat templates (`"default"` for the plain string form).
    pub fn chat_template_names(&self) -> Vec<&str> {
        self.templates.iter().map(|t| t.0.as_str()).collect()
    }

    /// The source of the chat template `name`, or of the default one (`None`; for the list
    /// form, the one named `"default"`, as `transformers` picks it).
    pub fn chat_template(&self, name: Option<&str>) -> Result<&str> {
        if self.templates.is_empty() {
            return Err(tok_err("this tokenizer has no chat template"));
        }
        let want = name.unwrap_or("default");
        self.templates.iter().find(|t| t.0 == want).map(|t| t.1.as_str()).ok_or_else(|| {
            tok_err(format!(
                "no chat template named {want:?}; available: {}",
                self.chat_template_names().join(", ")
            ))
        })
    }

    /// Renders the chat template over `messages` (a list of `{role, content, ..}` objects) as
    /// `transformers`' `apply_chat_template(messages, tokenize=False, ...)` does.
    pub fn apply_chat_template(
        &self,
        messages: &Value,
        options: &ChatTemplateOptions,
    ) -> Result<String> {
        let source = self.chat_template(options.template_name.as_deref())?;
        let mut ctx = Map::new();
        ctx.insert("messages".to_string(), messages.clone());
        ctx.insert("add_generation_prompt".to_string(), Value::Bool(options.add_generation_prompt));
        ctx.insert("tools".to_string(), options.tools.clone().unwrap_or(Value::Null));
        ctx.insert("documents".to_string(), options.documents.clone().unwrap_or(Value::Null));
        for (k, v) in &self.special_tokens {
            ctx.insert(k.clone(), v.clone());
        }
        for (k, v) in &options.extra {
            ctx.insert(k.clone(), v.clone());
        }
        render_chat_template(source, &Value::Object(ctx))
    }

    /// [`Tokenizer::apply_chat_template`] then [`Tokenizer::encode`] without special tokens (the
    /// template writes them), as mlx-lm tokenizes a chat prompt.
    pub fn encode_chat(&self, messages: &Value, options: &ChatTemplateOptions) -> Result<Vec<u32>> {
        self.encode(&self.apply_chat_template(messages, options)?, false)
    }

    /// A streaming detokenizer of the kind mlx-lm picks for this `tokenizer.json`'s decoder.
    pub fn detokenizer(&self) -> StreamingDetokenizer {
        StreamingDetokenizer::new(Arc::clone(&self.detok), Arc::clone(&self.inner))
    }
}

/// Options of [`Tokenizer::apply_chat_template`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatTemplateOptions {
    /// Append the assistant's turn opening.
    pub add_generation_prompt: bool,
    /// The `tools` variable (a list of JSON schemas); `None` is `none` in the template.
    pub tools: Option<Value>,
    /// The `documents` variable.
    pub documents: Option<Value>,
    /// Which named template (`None`: the default one).
    pub template_name: Option<String>,
    /// More variables (e.g. `enable_thinking`), passed as `transformers` passes `**kwargs`.
    pub extra: Map<String, Value>,
}

/// Renders a chat template `source` with the variables of `context` (a JSON object), in a
/// Jinja environment set up as `transformers`' (see the [module docs](self)).
pub fn render_chat_template(source: &str, context: &Value) -> Result<String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_function("strftime_now", |fmt: String| -> String { strftime_now(&fmt) });
    env.add_filter(
        "tojson",
        |v: minijinja::Value, kwargs: Kwargs| -> std::result::Result<String, minijinja::Error> {
            let indent: Option<usize> = kwargs.get("indent")?;
            let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
            kwargs.assert_all_used()?;
            let json = serde_json::to_value(&v)
                .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            let mut out = String::new();
            python_json(&json, indent, sort_keys.unwrap_or(false), 0, &mut out);
            Ok(out)
        },
    );
    env.add_template("chat_template", source)
        .map_err(|e| tok_err(format!("chat template does not parse: {e:#}")))?;
    let template =
        env.get_template("chat_template").map_err(|e| tok_err(format!("chat template: {e:#}")))?;
    template.render(minijinja::Value::from_serialize(context)).map_err(|e| match e.kind() {
        ErrorKind::InvalidOperation if e.detail().is_some() => {
            tok_err(format!("chat template raised: {}", e.detail().unwrap_or_default()))
        }
        _ => tok_err(format!("chat template: {e:#}")),
    })
}

/// JSON as Python's `json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=..)` writes it:
/// `", "` and `": "` separators without indent; `","` and newlines with it.
fn python_json(v: &Value, indent: Option<usize>, sort_keys: bool, depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                python_json(item, indent, sort_keys, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                python_json(item, indent, sort_keys, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            out.push_str(&python_float(f));
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Python's `repr` of a finite float (`1.0`, `0.5`, `1e-05`, `1e+20`).
fn python_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        return format!("{f:.1}");
    }
    let s = format!("{f:?}");
    if let Some((mant, exp)) = s.split_once('e') {
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    s
}

/// `strftime_now(fmt)` of `transformers`' templates: the current UTC date and time formatted
/// with `%Y %m %d %H %M %S %b %B %a %A %y %j %p %I %%` (other directives are kept as written).
fn strftime_now(fmt: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_time(secs, fmt)
}

/// Formats Unix time `secs` (UTC) with the `strftime` directives of [`strftime_now`].
fn format_time(secs: i64, fmt: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] =
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let day = doy_mar - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cum[(month - 1) as usize] + day + i64::from(leap && month > 2);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let mname = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('H') => out.push_str(&format!("{h:02}")),
            Some('I') => out.push_str(&format!("{:02}", if h % 12 == 0 { 12 } else { h % 12 })),
            Some('p') => out.push_str(if h < 12 { "AM" } else { "PM" }),
            Some('M') => out.push_str(&format!("{m:02}")),
            Some('S') => out.push_str(&format!("{s:02}")),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('B') => out.push_str(mname),
            Some('b') => out.push_str(&mname[..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Which streaming detokenizer mlx-lm picks from `tokenizer.json`'s decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetokenizerKind {
    /// SentencePiece-style (`▁` for spaces, `<0xNN>` byte fallback); `trim_space` drops the
    /// first leading space (the decoder's `Strip`).
    Spm {
        /// Drop the leading space of the text.
        trim_space: bool,
    },
    /// Byte-level BPE (GPT-2 style byte-to-unicode tokens).
    Bpe,
    /// Anything else: the tokenizer's own `decode`, re-run over the current line.
    Naive,
}

struct DetokenizerData {
    kind: DetokenizerKind,
    /// The bytes of each token id (empty for ids without a token).
    tokenmap: Vec<Vec<u8>>,
    /// Per id: the token is a lone space (BPE holds it back for the next token).
    lone_space: Vec<bool>,
    clean_spaces: bool,
}

/// GPT-2's byte-to-unicode table, inverted: the byte each printable stand-in char encodes.
/// Bytes that are printable stand for themselves; the other 68 are `U+0100..=U+0143` in order.
fn byte_decoder(c: char) -> Option<u8> {
    static TABLE: std::sync::OnceLock<[Option<u8>; 324]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let direct = |b: u8| matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let mut table = [None; 324];
        let mut n = 256;
        for b in 0..=255u8 {
            if direct(b) {
                table[usize::from(b)] = Some(b);
            } else {
                table[n] = Some(b);
                n += 1;
            }
        }
        table
    });
    table.get(c as usize).copied().flatten()
}

fn is_spm_decoder(d: &Value, with_strip: bool) -> bool {
    let mut want = vec![
        serde_json::json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
        serde_json::json!({"type": "ByteFallback"}),
        serde_json::json!({"type": "Fuse"}),
    ];
    if with_strip {
        want.push(serde_json::json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    d.get("type").and_then(Value::as_str) == Some("Sequence")
        && d.as_object().is_some_and(|o| o.len() == 2)
        && d.get("decoders") == Some(&Value::Array(want))
}

impl DetokenizerData {
    fn new(tok: &tokenizers::Tokenizer, decoder: Option<&Value>) -> DetokenizerData {
        let kind = match decoder {
            Some(d) if is_spm_decoder(d, true) => DetokenizerKind::Spm { trim_space: true },
            Some(d) if is_spm_decoder(d, false) => DetokenizerKind::Spm { trim_space: false },
            Some(d) if d.get("type").and_then(Value::as_str) == Some("ByteLevel") => {
                DetokenizerKind::Bpe
            }
            _ => DetokenizerKind::Naive,
        };
        let n = tok.get_vocab_size(true) as u32;
        // Ids may have gaps; cover the largest id.
        let max_id = tok
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .map_or(n, |m| m.max(n.saturating_sub(1)) + 1);
        let mut tokenmap = Vec::with_capacity(max_id as usize);
        let mut lone_space = Vec::with_capacity(max_id as usize);
        for id in 0..max_id {
            let t = tok.id_to_token(id).unwrap_or_default();
            let (bytes, lone) = match kind {
                DetokenizerKind::Bpe => {
                    let mut b = Vec::new();
                    for c in t.chars() {
                        match byte_decoder(c) {
                            Some(x) => b.push(x),
                            None => b.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                        }
                    }
                    let lone = t.chars().count() == 1 && b == [b' '];
                    (b, lone)
                }
                DetokenizerKind::Spm { .. } => {
                    let hex = t.strip_prefix("<0x").and_then(|r| r.strip_suffix('>'));
                    match hex.filter(|h| h.len() == 2).and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(byte) => (vec![byte], false),
                        None => (t.replace('\u{2581}', " ").into_bytes(), false),
                    }
                }
                DetokenizerKind::Naive => (Vec::new(), false),
            };
            tokenmap.push(bytes);
            lone_space.push(lone);
        }
        let clean_spaces = match kind {
            DetokenizerKind::Naive => tok
                .encode("a ,b", false)
                .ok()
                .and_then(|e| tok.decode(e.get_ids(), false).ok())
                .is_some_and(|s| !s.contains(" ,")),
            _ => false,
        };
        DetokenizerData { kind, tokenmap, lone_space, clean_spaces }
    }
}

/// Turns generated token ids into text as they come, never splitting a UTF-8 character.
///
/// [`add_token`](StreamingDetokenizer::add_token) returns the text that became complete with
/// that token (possibly empty: a character spread over several byte tokens appears with its
/// last byte); [`finalize`](StreamingDetokenizer::finalize) flushes what is held back. The
/// pieces concatenate to [`text`](StreamingDetokenizer::text). The kind follows mlx-lm:
/// byte-level BPE and SentencePiece decoders map each token to its bytes (linear time; the
/// first leading space of the text is dropped as mlx-lm does, and a lone-space BPE token waits
/// for the next token); other decoders re-decode the current line (mlx-lm's naive detokenizer).
/// Ids the tokenizer does not know (a padded model vocabulary) add no text.
pub struct StreamingDetokenizer {
    data: Arc<DetokenizerData>,
    tok: Arc<tokenizers::Tokenizer>,
    tokens: Vec<u32>,
    text: String,
    pending: Vec<u8>,
    // Naive: the tokens since the last newline and the text already emitted for them.
    line_tokens: Vec<u32>,
    line_emitted: String,
}

impl std::fmt::Debug for StreamingDetokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingDetokenizer")
            .field("kind", &self.data.kind)
            .field("tokens", &self.tokens.len())
            .field("text", &self.text)
            .finish()
    }
}

/// Splits off the longest prefix of `pending` that is complete UTF-8 (invalid bytes become
/// U+FFFD); with `force`, everything, an incomplete tail included.
fn take_complete(pending: &mut Vec<u8>, force: bool) -> String {
    let mut out = String::new();
    let mut start = 0;
    loop {
        match std::str::from_utf8(&pending[start..]) {
            Ok(s) => {
                out.push_str(s);
                start = pending.len();
                break;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(
                    std::str::from_utf8(&pending[start..start + valid]).unwrap_or_default(),
                );
                start += valid;
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        start += n;
                    }
                    None if force => {
                        out.push('\u{FFFD}');
                        start = pending.len();
                        break;
                    }
                    None => break,
                }
            }
        }
    }
    pending.drain(..start);
    out
}

impl StreamingDetokenizer {
    fn new(data: Arc<DetokenizerData>, tok: Arc<tokenizers::Tokenizer>) -> StreamingDetokenizer {
        StreamingDetokenizer {
            data,
            tok,
            tokens: Vec::new(),
            text: String::new(),
            pending: Vec::new(),
            line_tokens: Vec::new(),
            line_emitted: String::new(),
        }
    }

    /// The kind of detokenizer (chosen from the tokenizer's decoder).
    pub fn kind(&self) -> DetokenizerKind {
        self.data.kind
    }

    /// Drops all state, to start a new generation.
    pub fn reset(&mut self) {
        self.tokens.clear();
        self.text.clear();
        self.pending.clear();
        self.line_tokens.clear();
        self.line_emitted.clear();
    }

    /// The ids added so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// All text emitted so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn emit(&mut self, mut piece: String) -> String {
        let trims = match self.data.kind {
            DetokenizerKind::Spm { trim_space } => trim_space,
            DetokenizerKind::Bpe => true,
            DetokenizerKind::Naive => false,
        };
        if trims && self.text.is_empty() && piece.starts_with(' ') {
            piece.remove(0);
        }
        self.text.push_str(&piece);
        piece
    }

    /// Adds one id; returns the text completed by it.
    pub fn add_token(&mut self, id: u32) -> Result<String> {
        self.tokens.push(id);
        match self.data.kind {
            DetokenizerKind::Bpe | DetokenizerKind::Spm { .. } => {
                let idx = id as usize;
                if let Some(bytes) = self.data.tokenmap.get(idx) {
                    self.pending.extend_from_slice(bytes);
                }
                if self.data.lone_space.get(idx).copied().unwrap_or(false) {
                    return Ok(String::new());
                }
                let piece = take_complete(&mut self.pending, false);
                Ok(self.emit(piece))
            }
            DetokenizerKind::Naive => {
                self.line_tokens.push(id);
                let mut current = self
                    .tok
                    .decode(&self.line_tokens, false)
                    .map_err(|e| tok_err(format!("decode: {e}")))?;
                if current.ends_with('\u{FFFD}') {
                    current = current.trim_end_matches('\u{FFFD}').to_string();
                } else if self.data.clean_spaces && current.ends_with(' ') {
                    current.pop();
                }
                let piece = match current.strip_prefix(self.line_emitted.as_str()) {
                    Some(rest) => rest.to_string(),
                    // The decoder changed text already emitted: wait until it agrees again.
                    None => String::new(),
                };
                if !piece.is_empty() {
                    self.line_emitted = current;
                }
                if self.line_emitted.ends_with('\n') {
                    self.line_tokens.clear();
                    self.line_emitted.clear();
                }
                Ok(self.emit(piece))
            }
        }
    }

    /// Flushes what is held back (an incomplete character becomes U+FFFD); returns it.
    pub fn finalize(&mut self) -> Result<String> {
        match self.data.kind {
            DetokenizerKind::Bpe | DetokenizerKind::Spm { .. } => {
                let piece = take_complete(&mut self.pending, true);
                Ok(self.emit(piece))
            }
            DetokenizerKind::Naive => {
                let full = self
                    .tok
                    .decode(&self.line_tokens, false)
                    .map_err(|e| tok_err(format!("decode: {e}")))?;
                let piece = full.strip_prefix(self.line_emitted.as_str()).unwrap_or("").to_string();
                self.line_tokens.clear();
                self.line_emitted.clear();
                Ok(self.emit(piece))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_decoder_matches_gpt2_table() {
        assert_eq!(byte_decoder('!'), Some(b'!'));
        assert_eq!(byte_decoder('\u{120}'), Some(b' ')); // 'Ġ'
        assert_eq!(byte_decoder('\u{10A}'), Some(b'\n')); // 'Ċ'
        assert_eq!(byte_decoder('\u{100}'), Some(0));
        assert_eq!(byte_decoder(' '), None);
    }

    #[test]
    fn take_complete_holds_incomplete_tail() {
        let mut p = "a😀".as_bytes().to_vec();
        p.truncate(3);
        assert_eq!(take_complete(&mut p, false), "a");
        assert_eq!(p.len(), 2);
        p.extend_from_slice(&"😀".as_bytes()[2..]);
        assert_eq!(take_complete(&mut p, false), "😀");
        let mut bad = vec![b'x', 0xFF, b'y', 0xE4];
        assert_eq!(take_complete(&mut bad, false), "x\u{FFFD}y");
        assert_eq!(take_complete(&mut bad, true), "\u{FFFD}");
    }

    #[test]
    fn format_time_known_dates() {
        assert_eq!(format_time(0, "%d %b %Y %H:%M:%S %A %j"), "01 Jan 1970 00:00:00 Thursday 001");
        // 2024-07-26 12:34:56 UTC
        assert_eq!(
            format_time(1_721_997_296, "%d %B %Y, %I%p %a %j"),
            "26 July 2024, 12PM Fri 208"
        );
        assert_eq!(format_time(951_782_400, "%Y-%m-%d"), "2000-02-29");
    }

    #[test]
    fn python_json_format() {
        let v = serde_json::json!({"b": [1, 2.5, "é\n"], "a": {}, "c": true, "d": 1e-5});
        let mut s = String::new();
        python_json(&v, None, false, 0, &mut s);
        assert_eq!(s, r#"{"b": [1, 2.5, "é\n"], "a": {}, "c": true, "d": 1e-05}"#);
        let mut s = String::new();
        python_json(&v, Some(2), true, 0, &mut s);
        assert_eq!(
            s,
            "{\n  \"a\": {},\n  \"b\": [\n    1,\n    2.5,\n    \"é\\n\"\n  ],\n  \"c\": true,\n  \"d\": 1e-05\n}"
        );
    }
}
