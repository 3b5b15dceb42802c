import { withHarness } from './harness';
import { resolveOptions, type BenchOptions, type ScenarioName } from './options';
import { buildResult, type BenchResult } from './result';
import { SCENARIOS } from './scenarios';
import { measureConnect } from './scenarios/connect';
import { measureMessages } from './scenarios/messages';

/**
 * Runs one scenario against a running target (a broker, or the baseline server
 * with `baseline: true`) and returns its result. Unset options take the CLI's defaults.
 */
export async function runScenario(given: Partial<BenchOptions> & { scenario: ScenarioName }): Promise<BenchResult> {
  const options = resolveOptions(given);
  const spec = SCENARIOS[options.scenario];
  const startedAt = new Date().toISOString();
  return withHarness(options, spec, async (h) => {
    const measurement = await (spec.role === 'idle' ? measureConnect(h) : measureMessages(h));
    return buildResult(h.options, spec, h.pool.size, startedAt, measurement, h.targetNote);
  });
}
