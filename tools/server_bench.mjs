// Aggregate decode throughput of a running OpenAI-compatible server: one streamed request
// alone, then N at once (continuous batching), each greedy with the same max_tokens, counting
// the tokens the server reports in `usage`. No npm packages needed (Node 20's fetch).
//   node tools/server_bench.mjs --url http://127.0.0.1:8080/v1 --model NAME
//        [--concurrency 8] [--max-tokens 64] [--api-key KEY]
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const url = arg('url', 'http://127.0.0.1:8080/v1');
const model = arg('model');
const concurrency = Number(arg('concurrency', 8));
const maxTokens = Number(arg('max-tokens', 64));
const key = arg('api-key');
if (!model) {
  console.error('usage: node tools/server_bench.mjs --url URL --model NAME [--concurrency N] ' +
    '[--max-tokens N] [--api-key KEY]');
  process.exit(2);
}

// One streamed request; resolves with {tokens, seconds, ttft} (time to first content).
async function one(prompt) {
  const t0 = performance.now();
  const r = await fetch(`${url}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({
      model, messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: maxTokens,
      stream: true, stream_options: { include_usage: true },
    }),
  });
  if (!r.ok) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  let buf = '';
  let tokens = 0;
  let ttft = null;
  for await (const part of r.body) {
    buf += Buffer.from(part).toString('utf8');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, end);
      buf = buf.slice(end + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const chunk = JSON.parse(line.slice(6));
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      if (ttft === null && chunk.choices?.[0]?.delta?.content) ttft = performance.now() - t0;
    }
  }
  return { tokens, seconds: (performance.now() - t0) / 1000, ttft: (ttft ?? 0) / 1000 };
}

const prompts = Array.from({ length: concurrency }, (_, i) => `Request ${i}: once upon a time`);
await one('warm-up');
const alone = await one(prompts[0]);
const t0 = performance.now();
const all = await Promise.all(prompts.map(one));
const wall = (performance.now() - t0) / 1000;
const total = all.reduce((n, r) => n + r.tokens, 0);
const result = {
  model, max_tokens: maxTokens, concurrency,
  single: { tokens: alone.tokens, seconds: +alone.seconds.toFixed(3),
    tok_per_s: +(alone.tokens / alone.seconds).toFixed(1) },
  concurrent: { tokens: total, seconds: +wall.toFixed(3), tok_per_s: +(total / wall).toFixed(1),
    mean_ttft_s: +(all.reduce((s, r) => s + r.ttft, 0) / all.length).toFixed(3) },
};
result.speedup = +(result.concurrent.tok_per_s / result.single.tok_per_s).toFixed(2);
console.log(JSON.stringify(result, null, 1));
