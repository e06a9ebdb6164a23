// The OpenAPI 3.1 document of the evaluator's HTTP API, built from the same zod schemas that check the
// requests (z.toJSONSchema), so the document cannot drift from the code. Served at /openapi.json and
// kept in the repository as evaluator/openapi.json (`ringlet evaluator --openapi`; a test compares them).
import { z } from 'zod';
import { CompletionRequestSchema, DetokenizeSchema, TokenizeSchema } from './completions.js';
import { CompareSchema, GateSchema, SubmitSchema } from './service.js';

const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });
const json = (s: object) => ({ content: { 'application/json': { schema: s } } });
const error = {
  description: 'error',
  ...json({ type: 'object', properties: { error: { type: 'string' } }, required: ['error'] }),
};
const anyObject = { type: 'object' };
// The OpenAI routes' errors (openai-api.ts): {"error": {"message", "type", "param", "code"}}.
const openAiError = (description: string) => ({
  description,
  ...json({
    type: 'object',
    properties: {
      error: {
        type: 'object',
        properties: {
          message: { type: 'string' },
          type: { type: 'string', description: 'invalid_request_error, authentication_error, not_found_error, server_error ...' },
          param: { type: ['string', 'null'], description: 'the request field at fault' },
          code: { type: ['string', 'null'] },
        },
        required: ['message', 'type', 'param', 'code'],
      },
    },
    required: ['error'],
  }),
});
const writeErrors = {
  '400': {
    ...error,
    description: 'invalid request (the message names the field), unknown suite, or a suite file with bad lines',
  },
  '401': { ...error, description: 'missing or wrong bearer token' },
  '403': { ...error, description: 'checkpoint outside the configured roots' },
  '404': { ...error, description: 'unknown checkpoint' },
  '409': { ...error, description: 'checkpoint still being written (.tmp-*)' },
  '413': { ...error, description: 'request body over max_body_bytes' },
  '503': { ...error, description: 'shutting down' },
};

function post(summary: string, body: z.ZodType, ok: Record<string, unknown>) {
  return {
    post: {
      summary,
      security: [{ bearer: [] }],
      requestBody: { required: true, ...json(schema(body)) },
      responses: { ...ok, ...writeErrors },
    },
  };
}

export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Ringlet evaluator',
      version: '1.0.0',
      description:
        'Scores Ringlet checkpoints on evaluation suites, keeps the results, compares checkpoints and gates CI. See docs/evaluator.md.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/healthz': {
        get: { summary: 'liveness', responses: { '200': { description: 'the process answers', ...json(anyObject) } } },
      },
      '/readyz': {
        get: {
          summary: 'readiness: the database answers and the service is not shutting down',
          responses: {
            '200': { description: 'ready', ...json(anyObject) },
            '503': { description: 'not ready', ...json(anyObject) },
          },
        },
      },
      '/openapi.json': {
        get: { summary: 'this document', responses: { '200': { description: 'OpenAPI 3.1', ...json(anyObject) } } },
      },
      '/v1/evaluations': {
        ...post('submit an evaluation; identical concurrent submissions share one run', SubmitSchema, {
          '200': { description: 'finished (wait: true, or already stored): the evaluation with its results', ...json(anyObject) },
          '202': { description: 'accepted: {id, state, status}; read it at /v1/evaluations/{id}', ...json(anyObject) },
        }),
        get: {
          summary: 'list evaluations, newest first',
          parameters: [
            { name: 'run_dir', in: 'query', schema: { type: 'string' } },
            { name: 'checkpoint', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
          ],
          responses: { '200': { description: '{evaluations: [...]}', ...json(anyObject) } },
        },
      },
      '/v1/evaluations/{id}': {
        get: {
          summary: 'one evaluation: status, checkpoint lineage, per-suite results, energy (estimated)',
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'items', in: 'query', schema: { type: 'boolean' }, description: 'include per-item ids and scores' },
          ],
          responses: { '200': { description: 'the evaluation', ...json(anyObject) }, '404': error },
        },
      },
      '/v1/compare': post(
        'compare two checkpoints: per-suite metrics and a paired-bootstrap confidence interval of the difference',
        CompareSchema,
        {
          '200': { description: 'the comparison', ...json(anyObject) },
          '422': { ...error, description: 'an evaluation failed' },
        },
      ),
      '/v1/gate': post('CI gate: thresholds on metrics and/or no significant regression against a baseline', GateSchema, {
        '200': { description: '{pass, exit_code (0 pass, 1 fail), checks: [...]}', ...json(anyObject) },
        '422': { ...error, description: 'an evaluation failed' },
      }),
      '/v1/completions': {
        post: {
          summary:
            'OpenAI-compatible completions with logprobs and echo (lm-evaluation-harness, the openai client); a field it cannot honour is a 400 naming it; null means not given',
          security: [{ bearer: [] }],
          requestBody: { required: true, ...json(schema(CompletionRequestSchema)) },
          responses: {
            '200': {
              description:
                'an OpenAI text_completion object; with stream: true, Server-Sent Events: `data: {chunk}` per piece of text (the last of each choice with its finish_reason; with stream_options.include_usage, a last chunk with empty choices and the usage), then `data: [DONE]`',
              content: {
                'application/json': { schema: anyObject },
                'text/event-stream': { schema: { type: 'string' } },
              },
            },
            '400': openAiError(
              'a field it cannot honour, out of range, or unknown (param names it); a token id outside the vocabulary',
            ),
            '401': openAiError('missing or wrong bearer token'),
            '404': openAiError('the model is not served here'),
            '413': openAiError('request body over max_body_bytes'),
            '503': openAiError('shutting down'),
          },
        },
      },
      '/v1/models': {
        get: {
          summary: "the models /v1/completions serves, in OpenAI's list shape",
          responses: {
            '200': { description: '{object: "list", data: [{id, object: "model", created, owned_by}]}', ...json(anyObject) },
          },
        },
      },
      '/v1/models/{id}': {
        get: {
          summary: "one model, in OpenAI's shape",
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            '200': { description: '{id, object: "model", created, owned_by}', ...json(anyObject) },
            '404': openAiError('no such model'),
          },
        },
      },
      '/tokenizer_info': {
        get: {
          summary: 'the served tokenizer (lm-eval remote tokenizer)',
          responses: { '200': { description: 'eos_token etc.', ...json(anyObject) } },
        },
      },
      '/tokenize': post('text to token ids with the served tokenizer', TokenizeSchema, {
        '200': { description: '{tokens, count}', ...json(anyObject) },
      }),
      '/detokenize': post('token ids to text with the served tokenizer', DetokenizeSchema, {
        '200': { description: '{prompt}', ...json(anyObject) },
      }),
    },
  };
}
