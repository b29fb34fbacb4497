// brise serve through the official OpenAI Node SDK. Run by run_with_server.sh, which sets
// BRISE_URL, BRISE_MODEL_ID and BRISE_EXPECTED_GREEDY ({prompt, max_tokens, text} from
// `brise generate --temp 0`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';

const url = process.env.BRISE_URL;
const modelId = process.env.BRISE_MODEL_ID;
const greedyPath = process.env.BRISE_EXPECTED_GREEDY;
if (!url || !modelId || !greedyPath) {
  throw new Error('set BRISE_URL, BRISE_MODEL_ID and BRISE_EXPECTED_GREEDY (see run_with_server.sh)');
}
const expected = JSON.parse(readFileSync(greedyPath, 'utf8'));

const client = new OpenAI({
  baseURL: url + '/v1',
  apiKey: process.env.BRISE_API_KEY || 'x',
  maxRetries: 0,
  timeout: 60_000,
});

const messages = [
  { role: 'system', content: 'You tell short stories.' },
  { role: 'user', content: 'Tell me a story about a cat.' },
];
const MAX_TOKENS = 32;
const greedyChat = { model: modelId, messages, max_tokens: MAX_TOKENS, temperature: 0 };
const opts = { timeout: 60_000 };

function checkUsage(usage, maxTokens) {
  assert.ok(usage, 'usage is present');
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
    assert.ok(Number.isInteger(usage[k]) && usage[k] >= 0, `usage.${k} is a count: ${usage[k]}`);
  }
  assert.ok(usage.prompt_tokens > 0, 'the prompt has tokens');
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens, 'total = prompt + completion');
  assert.ok(usage.completion_tokens <= maxTokens, `completion_tokens ${usage.completion_tokens} <= max_tokens ${maxTokens}`);
}

let nonStreamingContent;

test('GET /v1/models lists the model', opts, async () => {
  const ids = [];
  for await (const m of client.models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.ok(ids.includes(modelId), `${JSON.stringify(ids)} includes ${modelId}`);
  const one = await client.models.retrieve(modelId).catch((e) => e);
  // Retrieving one model is optional for the server, but when it answers 200 it must be the model.
  if (!(one instanceof OpenAI.NotFoundError)) {
    assert.ok(!(one instanceof Error), `models.retrieve: ${one}`);
    assert.equal(one.id, modelId);
  }
});

test('chat completion, non-streaming', opts, async () => {
  const before = Math.floor(Date.now() / 1000);
  const r = await client.chat.completions.create(greedyChat);
  assert.equal(typeof r.id, 'string');
  assert.ok(r.id.length > 0);
  assert.equal(r.object, 'chat.completion');
  assert.ok(Number.isInteger(r.created) && Math.abs(r.created - before) < 120, `created ${r.created} is a Unix time in seconds`);
  assert.equal(r.model, modelId);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.ok(c.message.content.length > 0, 'the reply is not empty');
  assert.ok(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
  checkUsage(r.usage, MAX_TOKENS);
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, MAX_TOKENS);
  nonStreamingContent = c.message.content;

  const again = await client.chat.completions.create(greedyChat);
  assert.equal(again.choices[0].message.content, nonStreamingContent, 'greedy is deterministic');
  assert.notEqual(again.id, r.id, 'each completion has its own id');
});

test('chat completion, streaming with usage', opts, async () => {
  const stream = await client.chat.completions.create({
    ...greedyChat, stream: true, stream_options: { include_usage: true },
  });
  let text = '', chunks = 0, contentChunks = 0, finish = null, usage = null, id = null, sawRole = false;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.model, modelId);
    id ??= chunk.id;
    assert.equal(chunk.id, id, 'every chunk has the same id');
    if (chunk.usage) {
      assert.equal(usage, null, 'one usage chunk');
      usage = chunk.usage;
      assert.deepEqual(chunk.choices, [], 'the usage chunk has no choices');
      continue;
    }
    assert.equal(usage, null, 'the usage chunk is the last one');
    assert.equal(chunk.choices.length, 1);
    const c = chunk.choices[0];
    assert.equal(finish, null, 'nothing follows the finish_reason chunk but usage');
    if (chunks === 1) assert.equal(c.delta.role, 'assistant', 'the first chunk has delta.role');
    if (c.delta.role) sawRole = true;
    if (c.delta.content) { text += c.delta.content; contentChunks++; }
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.ok(sawRole);
  assert.ok(contentChunks > 1, `the reply came in pieces (${contentChunks} content chunks)`);
  assert.ok(['stop', 'length'].includes(finish), `finish_reason ${finish}`);
  checkUsage(usage, MAX_TOKENS);
  if (nonStreamingContent === undefined) {
    nonStreamingContent = (await client.chat.completions.create(greedyChat)).choices[0].message.content;
  }
  assert.equal(text, nonStreamingContent, 'streamed deltas add up to the non-streaming reply');
});

test('streaming without include_usage sends no usage', opts, async () => {
  const stream = await client.chat.completions.create({ ...greedyChat, max_tokens: 4, stream: true });
  for await (const chunk of stream) {
    assert.ok(chunk.usage == null, `no usage without stream_options.include_usage: ${JSON.stringify(chunk)}`);
  }
});

test('completion, greedy, equals brise generate --temp 0', opts, async () => {
  const r = await client.completions.create({
    model: modelId, prompt: expected.prompt, max_tokens: expected.max_tokens, temperature: 0,
  });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, modelId);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].text, expected.text);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  checkUsage(r.usage, expected.max_tokens);

  const stream = await client.completions.create({
    model: modelId, prompt: expected.prompt, max_tokens: expected.max_tokens, temperature: 0, stream: true,
  });
  let text = '';
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    text += chunk.choices[0]?.text ?? '';
  }
  assert.equal(text, expected.text, 'streamed completion equals the greedy reference');
});

test('seeded sampling is reproducible', opts, async () => {
  const req = { model: modelId, messages, max_tokens: 24, temperature: 1, seed: 1234 };
  const a = await client.chat.completions.create(req);
  const b = await client.chat.completions.create(req);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
});

test('invalid parameters are a 400 BadRequestError', opts, async () => {
  for (const bad of [{ n: 0 }, { max_tokens: -1 }, { frequency_penalty: 3 }, { no_such_field: 1 }]) {
    await assert.rejects(
      client.chat.completions.create({ ...greedyChat, ...bad }),
      (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, `${JSON.stringify(bad)}: ${e?.constructor?.name} ${e}`);
        assert.equal(e.status, 400);
        assert.equal(typeof e.error?.message, 'string', 'an OpenAI error object');
        assert.ok(e.error.message.length > 0);
        return true;
      },
    );
  }
});

test('an unknown model is a 404 NotFoundError, model_not_found, as OpenAI answers', opts, async () => {
  await assert.rejects(
    client.chat.completions.create({ ...greedyChat, model: 'no-such-model' }),
    (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, `${e?.constructor?.name} ${e}`);
      assert.equal(e.status, 404);
      assert.equal(e.code, 'model_not_found');
      assert.equal(typeof e.error?.message, 'string', 'an OpenAI error object');
      return true;
    },
  );
});

test('n choices of one prompt, each with its index and its own logprobs', opts, async () => {
  const r = await client.chat.completions.create({
    ...greedyChat, temperature: 1, seed: 7, n: 2, logprobs: true, top_logprobs: 2,
  });
  assert.equal(r.choices.length, 2);
  let entries = 0;
  for (const [i, c] of r.choices.entries()) {
    assert.equal(c.index, i);
    assert.equal(c.message.role, 'assistant');
    for (const e of c.logprobs.content) {
      assert.ok(e.logprob <= 0, `logprob ${e.logprob}`);
      assert.equal(e.top_logprobs.length, 2);
      // The first alternative is the most likely token: at least as likely as the chosen one.
      assert.ok(e.top_logprobs[0].logprob >= e.logprob);
      assert.equal(Buffer.from(e.bytes).toString('utf8'), e.token);
      entries++;
    }
  }
  // Every generated token has an entry, but an end-of-sequence token, which has no text.
  const tokens = r.usage.completion_tokens;
  assert.ok(entries <= tokens && entries >= tokens - 2, `${entries} entries, ${tokens} tokens`);
});

// Structured output as the SDK asks for it: chat.completions.parse (beta) with a json_schema
// response_format takes the content apart with JSON.parse, and throws on finish_reason "length".
// stories260k knows no JSON; the constraint makes every sample valid (checked here by hand).
test('response_format json_schema through chat.completions.parse', opts, async () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      age: { type: 'integer' },
      mood: { enum: ['happy', 'sad'] },
    },
    required: ['name', 'mood'],
    additionalProperties: false,
  };
  for (const seed of [1, 2, 3]) {
    const r = await client.beta.chat.completions.parse({
      model: modelId, messages, max_tokens: 40, temperature: 1, seed,
      response_format: { type: 'json_schema', json_schema: { name: 'cat', strict: true, schema } },
    });
    const parsed = r.choices[0].message.parsed;
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(typeof parsed, 'object', JSON.stringify(parsed));
    assert.ok(parsed !== null && !Array.isArray(parsed));
    for (const key of Object.keys(parsed)) assert.ok(key in schema.properties, `unexpected key ${key}`);
    assert.equal(typeof parsed.name, 'string');
    assert.ok(['happy', 'sad'].includes(parsed.mood), `mood ${parsed.mood}`);
    if ('age' in parsed) assert.ok(Number.isInteger(parsed.age), `age ${parsed.age}`);
  }
  // The SDK's own route from a zod schema: zodResponseFormat, then parse validates with zod.
  const Cat = z.object({ name: z.string(), lives: z.number().int(), mood: z.enum(['happy', 'sad']) });
  for (const seed of [1, 2, 3]) {
    const r = await client.beta.chat.completions.parse({
      model: modelId, messages, max_tokens: 40, temperature: 1, seed,
      response_format: zodResponseFormat(Cat, 'cat'),
    });
    assert.equal(r.choices[0].finish_reason, 'stop');
    const parsed = r.choices[0].message.parsed;
    assert.deepEqual(Cat.parse(parsed), parsed, JSON.stringify(parsed));
  }
  // A keyword outside brise's subset is a BadRequestError that names it.
  await assert.rejects(
    client.chat.completions.create({
      ...greedyChat,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'x', schema: { type: 'string', pattern: '^a' } },
      },
    }),
    (e) => e instanceof OpenAI.BadRequestError && /pattern/.test(e.error.message),
  );
});
