// The JSON that `ringlet serve` (web/server/) sends and the UI (web/app/) reads: one set of types for both
// sides. Every number is what the run wrote; a field the run never recorded is null, never a made-up 0.

/** How a run stands: from its metrics.jsonl (start and end records), its process, or a live coordinator. */
export type RunStatus = 'running' | 'finished' | 'failed' | 'unknown';

/** One row of the runs page. */
export interface RunSummary {
  /** The run folder relative to --runs, with '/' separators: the id in every /api/runs/{id} URL. */
  id: string;
  status: RunStatus;
  /** Why the run failed, when it did and said so. */
  error: string | null;
  preset: string | null;
  /** The dataset folder the run trained on, and its language when the dataset's manifest names one. */
  dataset: string | null;
  language: string | null;
  parameters: number | null;
  step: number | null;
  /** The step the run will stop at, when known (its schedule horizon). */
  horizon: number | null;
  tokens: number | null;
  loss: number | null;
  val_loss: number | null;
  val_bpb: number | null;
  tokens_per_s: number | null;
  mfu: number | null;
  energy_j: number | null;
  emissions_g: number | null;
  workers: number | null;
  started_at: string | null;
  updated_at: string | null;
  checkpoints: number;
}

/** One point of a run's curves: a training step or an evaluation, as metrics.jsonl holds it. */
export interface MetricPoint {
  type: 'step' | 'eval';
  step: number;
  /** Training tokens seen by this step (batch × context × steps), the x axis of every curve. */
  tokens: number;
  time: string;
  loss?: number;
  lr?: number;
  grad_norm?: number;
  tokens_per_s?: number;
  mfu?: number;
  energy_j?: number;
  val_loss?: number;
  val_bpb?: number;
}

export interface CheckpointInfo {
  /** `RUN_ID/step-NNNNNNNN`: what the playground and /v1/completions call the model. */
  id: string;
  run: string;
  step: number;
  created_at: string;
  preset: string | null;
  parameters: number;
  evaluations: EvaluationSummary[];
}

/** An evaluation of one checkpoint from the evaluator's store (evaluator/store.ts). */
export interface EvaluationSummary {
  id: string;
  status: string;
  /** Why a failed evaluation failed. */
  error: string | null;
  created_at: string;
  suites: Record<string, SuiteScore>;
}

export interface SuiteScore {
  /** The suite's headline number: accuracy for blimp and dalaj, bits per byte for val. */
  metric: string;
  value: number;
  /** Every figure the suite reports (accuracy; val_loss, val_bpb, perplexity; distinct_n …). */
  metrics: Record<string, number>;
  /** 95% bootstrap interval of an accuracy over the suite's items; null for the other metrics. */
  ci_low: number | null;
  ci_high: number | null;
  items: number;
  /** Per paradigm (BLiMP) or per category, when the suite has them: name → accuracy. */
  groups?: Record<string, number>;
}

export interface WorkerInfo {
  rank: number;
  id: string;
  host: string | null;
  healthy: boolean;
  step: number | null;
  last_seen_s: number | null;
}

/** GET /api/runs/{id} */
export interface RunDetail {
  summary: RunSummary;
  config: unknown;
  metrics: MetricPoint[];
  /** Lines of metrics.jsonl that could not be read (a truncated last line while the run writes). */
  skipped_lines: number;
  checkpoints: CheckpointInfo[];
  /** A distributed run's workers, from its live coordinator; null for a one-process run. */
  workers: WorkerInfo[] | null;
}

/** GET /api/runs → { runs } ; GET /api/checkpoints → { checkpoints } */
export interface RunList {
  runs: RunSummary[];
}
export interface CheckpointList {
  checkpoints: CheckpointInfo[];
}

/** GET /api/compare?runs=A,B[,C…] */
export interface Comparison {
  runs: RunDetail[];
  /** Paired comparisons between the runs' latest evaluated checkpoints, from the evaluator store. */
  pairs: Array<{
    a: string;
    b: string;
    suite: string;
    /** b − a in the mean item score (higher is better: accuracy, or −nats per window for val), with its 95% paired-bootstrap interval. */
    difference: number;
    ci_low: number;
    ci_high: number;
  }>;
}

/** POST /api/generate: the playground's request; the answer is a Server-Sent Events stream. */
export interface PlaygroundRequest {
  checkpoint: string;
  prompt: string;
  max_tokens: number;
  temperature: number;
  top_k: number;
  top_p: number;
  repetition_penalty: number;
  seed: number;
  /** How many alternatives to send with each token (0: none). */
  top_logprobs: number;
}

/** SSE `event: token` */
export interface TokenEvent {
  index: number;
  id: number;
  /** The token's text; may be '' while a UTF-8 character is split across tokens (then `text` catches up). */
  text: string;
  /** Natural-log probability of this token under the model (before temperature and the other filters). */
  logprob: number;
  top: Array<{ text: string; logprob: number }>;
}

/** SSE `event: done` */
export interface DoneEvent {
  tokens: number;
  prompt_tokens: number;
  stopped: 'end_of_document' | 'max_tokens' | 'cancelled';
  seconds: number;
  tokens_per_s: number;
  first_token_ms: number;
  energy_j_per_1k_tokens: number | null;
  energy_estimated: boolean;
}

/** SSE `event: error`, and the body of every non-2xx JSON answer. */
export interface ErrorBody {
  error: { message: string; type: string; code: string | null; param?: string | null };
}

/** SSE on GET /api/runs/stream: `event: run` carries a RunSummary whenever one changes. */
/** SSE on GET /api/runs/{id}/stream: `event: metric` carries each new MetricPoint, `event: run` the summary. */
