//! The layer loop: one pass of some new tokens through the stack under layer plans, shared by
//! prefill, decoding steps, verify chunks, teacher forcing and training.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData, activation};
use hsd_skip::{
    KvFill, LayerPlan, LayerSet, LayerSignal, SignalKind, StepContext, StepTrace, Strategy,
};

use crate::ModelError;
use crate::arch::{Architecture, Block};
use crate::attention::{CacheAttention, LayerStep};
use crate::cache::Cache;
use crate::readback::read_f32;

/// The strategy hooks of one decoding step; absent in prefill.
pub(crate) struct Steering<'a> {
    pub(crate) strategy: &'a mut dyn Strategy,
    pub(crate) cx: &'a StepContext,
}

/// The model a pass runs through: its layers, their device, and how its short passes attend
/// over the cache.
pub(crate) struct Stack<'a, A> {
    pub(crate) arch: &'a A,
    pub(crate) device: &'a Device,
    pub(crate) attention: CacheAttention,
}

/// The layer plans of one pass.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PassPlans<'a> {
    /// One plan for every new position: prefill, a decoding step, a verify chunk.
    Shared(&'a LayerPlan),
    /// One plan per new position, as consecutive decoding steps had them. Such a pass asks
    /// the strategy nothing, so its plans must check no layer.
    PerPosition(&'a [LayerPlan]),
}

/// What one layer does for one position.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Work {
    Run,
    /// Skipped, but its K/V are computed from the hidden state passing through.
    Propagate,
    /// Skipped without K/V: later positions cannot attend to it at this layer.
    Skip,
}

impl Work {
    fn of(plan: &LayerPlan, layer: usize, exited: bool) -> Self {
        if !exited && plan.run.contains(layer) {
            Self::Run
        } else if plan.kv_fill == KvFill::None {
            Self::Skip
        } else {
            Self::Propagate
        }
    }
}

/// Runs `ids` (`B * T`, the next `T` slots of every row) through the stack as `plans` say,
/// writing K/V where layers run or propagate, offering signals after checked layers and
/// exiting when the strategy says so. `skips` (per layer, `[B, T, hidden]`, true where a token
/// skips the layer) keeps those tokens' hidden states through layers that run; so does a
/// position whose own plan skips a layer that another position runs.
pub(crate) fn run_stack<A: Architecture>(
    stack: Stack<'_, A>,
    ids: &[u32],
    cache: &mut Cache,
    plans: PassPlans<'_>,
    mut steering: Option<Steering<'_>>,
    skips: Option<&[Tensor<3, Bool>]>,
) -> Result<(Tensor<3>, StepTrace), ModelError> {
    let Stack {
        arch,
        device,
        attention,
    } = stack;
    let batch = cache.batch();
    let count = ids.len() / batch;
    let start = cache.len();
    if let PassPlans::PerPosition(plans) = plans {
        if plans.len() != count || plans.iter().any(|plan| !plan.checks.is_empty()) {
            return Err(ModelError::Batch(format!(
                "{} per-position plans (checking nothing) for {count} positions",
                plans.len()
            )));
        }
        if skips.is_some() {
            return Err(ModelError::Batch(
                "per-position plans and per-token skips in one pass".into(),
            ));
        }
    }
    let positions = Tensor::<2, Int>::from_data(
        TensorData::new(cache.positions(start, count), [batch, count]),
        device,
    );
    let angles = arch.rope().map(|rope| rope.angles(&positions));
    let mut h = arch.embed(ids, &positions, device);
    let layers = arch.blocks().len();
    let hidden = arch.shapes().hidden;
    let padding_bias = cache.padding_bias(start, count, device);
    let check_kind = steering
        .as_ref()
        .map_or(SignalKind::Hidden, |s| s.strategy.signal_kind());
    let mut trace = StepTrace {
        ran: LayerSet::empty(layers),
        propagated: LayerSet::empty(layers),
        checks: 0,
        check_kind,
        exited_after: None,
        context_len: start + count - cache.min_padding(),
    };
    for (layer, block) in arch.blocks().iter().enumerate() {
        let exited = trace.exited_after.is_some();
        // Per run of positions `(first slot, slots, work)`: the whole pass, or each position.
        let spans: Vec<(usize, usize, Work)> = match plans {
            PassPlans::Shared(plan) => vec![(start, count, Work::of(plan, layer, exited))],
            PassPlans::PerPosition(plans) => plans
                .iter()
                .enumerate()
                .map(|(i, plan)| (start + i, 1, Work::of(plan, layer, exited)))
                .collect(),
        };
        if spans.iter().all(|&(_, _, work)| work == Work::Skip) {
            cache.mark_skipped(layer, start, count);
            continue;
        }
        for &(slot, slots, work) in &spans {
            if work == Work::Skip {
                cache.mark_skipped(layer, slot, slots);
            } else {
                cache.mark_written(layer, slot, slots);
            }
        }
        let layer_bias;
        let bias = if cache.has_holes(layer) {
            layer_bias = cache.layer_bias(layer, start, count, device);
            &layer_bias
        } else {
            &padding_bias
        };
        let mut step = LayerStep {
            cache: &mut *cache,
            layer,
            start,
            bias,
            rope: angles.as_ref(),
            attention,
        };
        if spans.iter().all(|&(_, _, work)| work != Work::Run) {
            block.fill_kv(h.clone(), &mut step);
            trace.propagated.insert(layer);
            continue;
        }
        let checked = matches!(plans, PassPlans::Shared(plan) if plan.checks.contains(layer))
            && steering.is_some();
        let previous = checked.then(|| h.clone());
        let kept = match skips {
            Some(skips) => Some(skips[layer].clone()),
            None => positions_kept(&spans, batch, hidden, device),
        };
        h = match kept {
            Some(kept) => block.forward(h.clone(), &mut step).mask_where(kept, h),
            None => block.forward(h, &mut step),
        };
        trace.ran.insert(layer);
        if let (Some(previous), Some(steer)) = (previous, steering.as_mut()) {
            trace.checks += 1;
            if offer_signal(arch, steer, layer, &h, previous, check_kind)? {
                trace.exited_after = Some(layer);
            }
        }
    }
    cache.advance(count);
    Ok((h, trace))
}

/// `[B, T, hidden]`, true at the positions of `spans` that do not run the layer, or `None`
/// when every position runs it.
fn positions_kept(
    spans: &[(usize, usize, Work)],
    batch: usize,
    hidden: usize,
    device: &Device,
) -> Option<Tensor<3, Bool>> {
    if spans.iter().all(|&(_, _, work)| work == Work::Run) {
        return None;
    }
    let count: usize = spans.iter().map(|&(_, slots, _)| slots).sum();
    let row: Vec<bool> = spans
        .iter()
        .flat_map(|&(_, slots, work)| std::iter::repeat_n(work != Work::Run, slots * hidden))
        .collect();
    let mask = row.repeat(batch);
    Some(Tensor::from_data(
        TensorData::new(mask, [batch, count, hidden]),
        device,
    ))
}

/// Builds one [`LayerSignal`] per row from the last position and asks the strategy whether to
/// stop the stack.
fn offer_signal<A: Architecture>(
    arch: &A,
    steering: &mut Steering<'_>,
    layer: usize,
    hidden: &Tensor<3>,
    previous: Tensor<3>,
    kind: SignalKind,
) -> Result<bool, ModelError> {
    let [b, t, d] = hidden.dims();
    let last = |x: Tensor<3>| x.narrow(1, t - 1, 1).reshape([b, d]);
    let out = last(hidden.clone());
    let probs = match kind {
        SignalKind::Probs => {
            let p = read_f32(
                activation::softmax(arch.head(out.clone()), 1),
                "signal probs",
            )?;
            Some(p)
        }
        SignalKind::Hidden => None,
    };
    let out = read_f32(out, "signal hidden")?;
    let previous = read_f32(last(previous), "signal previous hidden")?;
    let vocab = probs.as_ref().map_or(0, |p| p.len() / b);
    let signals: Vec<LayerSignal<'_>> = (0..b)
        .map(|row| LayerSignal {
            hidden: &out[row * d..(row + 1) * d],
            previous: &previous[row * d..(row + 1) * d],
            probs: probs.as_ref().map(|p| &p[row * vocab..(row + 1) * vocab]),
        })
        .collect();
    Ok(steering.strategy.exit_after(steering.cx, layer, &signals))
}
