import { request } from 'node:http';

interface HttpAnswer {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** One HTTP GET to 127.0.0.1 (a fresh connection each time). */
export function httpGet(port: number, path: string, timeoutMs = 5000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

/**
 * Parses Prometheus text exposition format 0.0.4 strictly: every line is blank,
 * a `#` comment, or `name{label="value",...} value [timestamp]`. Throws on
 * anything else, naming the line.
 */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  text.split('\n').forEach((line, index) => {
    if (line === '' || line.startsWith('#')) return;
    const match = SAMPLE_LINE.exec(line);
    if (!match) throw new Error(`line ${index + 1} is not a Prometheus sample: ${JSON.stringify(line)}`);
    const [, name = '', labelText = '', valueText = ''] = match;
    const labels: Record<string, string> = {};
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < labelText.length) {
      const start = LABEL.lastIndex;
      const label = LABEL.exec(labelText);
      if (!label || LABEL.lastIndex === start) throw new Error(`line ${index + 1} has malformed labels: ${JSON.stringify(line)}`);
      labels[label[1] as string] = (label[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : valueText === 'NaN' ? NaN : Number(valueText);
    if (Number.isNaN(value) && valueText !== 'NaN') throw new Error(`line ${index + 1} has a value that is not a number: ${JSON.stringify(line)}`);
    samples.push({ name, labels, value });
  });
  return samples;
}

/** The value of the sample with this name whose labels include `labels`; undefined if there is none. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value;
}

/** GETs /metrics, checks it is Prometheus text, and parses it. */
export async function scrape(port: number): Promise<Sample[]> {
  const answer = await httpGet(port, '/metrics');
  if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}`);
  if (!answer.contentType?.startsWith('text/plain')) throw new Error(`/metrics content type ${answer.contentType}`);
  return parsePrometheus(answer.body);
}
