// Reverse-mode gradients that free memory as the backward pass goes. TensorFlow.js 4.22's
// Engine.gradients (behind tf.variableGrads) keeps every intermediate gradient and every tensor saved for
// the backward pass alive until the whole backward pass ends, so its peak holds all activations and all
// their gradients at once: 1.84 GB of tensors in a step of the 8.5M preset at batch 16 × 256. This is the
// same algorithm (the tape walked backward, gradients accumulated per tensor with add(), the same
// checks and errors, so results are bit-identical) except that once a tape node has been processed, the
// gradients of its outputs and the tensors it saved are disposed, unless a requested gradient still
// refers to them. Higher-order gradients (a gradient taken inside another) keep the stock code.
// The tape's shape is tfjs-core's TapeNode (src/tape.ts); filteredNodesXToY is its getFilteredNodesXToY
// (Apache-2.0), unchanged but for types. Both are internal to tfjs, hence the exact version pin and the
// test that compares this against the stock implementation (test/lean-gradients.test.ts).
// It also says when each requested gradient is final (whenGradientFinal): the moment the walk has passed
// the last tape node that reads x, no later node adds to x's gradient, so a data-parallel worker can start
// reducing it while the rest of the backward pass runs (as PyTorch DDP's reducer hooks do).
import * as tf from '@tensorflow/tfjs';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: Array<tf.Tensor | null>) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

type GradientsResult = { value: tf.Tensor; grads: tf.Tensor[] };
type Gradients = (f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean) => GradientsResult;

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(nameOrFn: string | (() => T), fn?: () => T): T;
  gradients: Gradients;
}

let installed = false;

/** Told of x's gradient the moment it is final; the tensor stays alive until the gradients are returned. */
export type GradientFinal = (x: tf.Tensor, gradient: tf.Tensor) => void;
let onFinal: GradientFinal | null = null;

/** Runs `f` (which takes gradients, e.g. tf.variableGrads) with `listener` told of each final gradient. */
export function whenGradientFinal<T>(listener: GradientFinal, f: () => T): T {
  if (!installed) throw new Error('whenGradientFinal needs the lean gradients (kernels/backend.ts installs them)');
  const outer = onFinal;
  onFinal = listener;
  try {
    return f();
  } finally {
    onFinal = outer;
  }
}

/** Replaces the engine's gradients() (used by tf.variableGrads, tf.grads, ...) for this process. */
export function installLeanGradients(): void {
  if (installed) return;
  const engine = tf.engine() as unknown as EngineInternals;
  const stock = engine.gradients;
  engine.gradients = (f, xs, dy, allowNoGradients = false) =>
    engine.state.gradientDepth > 0
      ? stock.call(engine, f, xs, dy, allowNoGradients)
      : leanGradients(engine, f, xs, dy, allowNoGradients);
  installed = true;
}

function leanGradients(
  engine: EngineInternals,
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy: tf.Tensor | undefined,
  allowNoGradients: boolean,
): GradientsResult {
  if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
  if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
  const y = engine.scopedRun(
    () => engine.startTape(),
    () => engine.endTape(),
    () => engine.tidy('forward', f),
  );
  if (!(y instanceof tf.Tensor)) throw new Error('The result y returned by f() must be a tensor.');
  const tape = engine.state.activeTape!;
  const filtered = filteredNodesXToY(tape, xs, y);
  if (!allowNoGradients && filtered.length === 0 && xs.length > 0)
    throw new Error(
      'Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations ' +
        'that lead from x to y.',
    );
  const listener = onFinal;
  // For each node index, the xs whose last reader it is: once the walk is past it, their gradients are final.
  const finalAfter = new Map<number, tf.Tensor[]>();
  if (listener) {
    const pending = new Set(xs.map((x) => x.id));
    for (let i = 0; i < filtered.length && pending.size > 0; i++)
      for (const inputName in filtered[i].inputs) {
        const x = filtered[i].inputs[inputName];
        if (!pending.has(x.id)) continue;
        pending.delete(x.id);
        finalAfter.set(i, [...(finalAfter.get(i) ?? []), x]);
      }
  }
  return engine.tidy('backward', () => {
    const grads = new Map<number, tf.Tensor>([[y.id, dy ?? tf.ones(y.shape)]]); // tensor id → its gradient so far
    const wanted = new Set(xs.map((x) => x.id));
    const held = (t: tf.Tensor) => t === dy || [...grads.values()].includes(t);
    const release = (t: tf.Tensor) => {
      if (!held(t)) t.dispose();
    };
    for (let i = filtered.length - 1; i >= 0; i--) {
      const node = filtered[i];
      const dys = node.outputs.map((o) => grads.get(o.id) ?? null); // null: an output y does not depend on
      if (node.gradient == null) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
      const inputGradients = node.gradient(dys);
      for (const inputName in node.inputs) {
        if (!(inputName in inputGradients))
          throw new Error(
            `Cannot backprop through input ${inputName}. Available gradients found: ${Object.keys(inputGradients)}.`,
          );
        const dx = engine.tidy(() => inputGradients[inputName]());
        if (dx.dtype !== 'float32')
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input ${inputName} must have 'float32' dtype, ` +
              `but has '${dx.dtype}'`,
          );
        const x = node.inputs[inputName];
        if (!tf.util.arraysEqual(dx.shape, x.shape))
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input '${inputName}' has shape '${dx.shape}', ` +
              `which does not match the shape of the input '${x.shape}'`,
          );
        const previous = grads.get(x.id);
        if (previous === undefined) grads.set(x.id, dx);
        else {
          grads.set(x.id, tf.add(previous, dx));
          release(previous);
          release(dx);
        }
      }
      // The gradients of this node's outputs and what it saved have served their only purpose.
      for (const o of node.outputs) {
        const g = grads.get(o.id);
        if (g === undefined || wanted.has(o.id)) continue;
        grads.delete(o.id);
        release(g);
      }
      for (const t of node.saved ?? []) release(t);
      for (const x of finalAfter.get(i) ?? []) listener!(x, grads.get(x.id)!);
    }
    const result = xs.map((x) => grads.get(x.id)!);
    // As the stock code does at depth 0: what nodes outside the x → y paths saved goes too, and the tape.
    for (const node of tape) for (const t of node.saved ?? []) if (!result.includes(t)) t.dispose();
    engine.state.activeTape = null;
    return { value: y, grads: result };
  });
}

/** The tape nodes on a path from some x to y, with inputs that do not depend on any x pruned. */
function filteredNodesXToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  // Forward: every node and tensor that is transitively a function of some x.
  const tensorsFromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape)
    for (const inputName in node.inputs)
      if (tensorsFromX.has(node.inputs[inputName].id)) {
        for (const output of node.outputs) tensorsFromX.add(output.id);
        nodesFromX.add(node.id);
        break;
      }
  // Backward: every node and tensor that leads to y.
  const tensorsLeadToY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => tensorsLeadToY.has(o.id)))
      for (const inputName in node.inputs) {
        tensorsLeadToY.add(node.inputs[inputName].id);
        nodesToY.add(node.id);
      }
  }
  const filtered: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const inputName in node.inputs)
      if (tensorsFromX.has(node.inputs[inputName].id)) inputs[inputName] = node.inputs[inputName];
    filtered.push({ ...node, inputs, outputs: node.outputs });
  }
  return filtered;
}
