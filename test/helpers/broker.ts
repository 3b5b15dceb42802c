import { Broker, type BrokerDeps } from '../../src/broker';
import { defaultConfig, type BrokerConfig } from '../../src/config';
import { createLogger } from '../../src/logger';

export interface TestBroker {
  broker: Broker;
  wsPort: number;
  tcpPort: number;
  url(path?: string): string;
  stop(): Promise<void>;
}

/** A real broker in this process, on free ports of 127.0.0.1. */
export async function startBroker(overrides: Partial<BrokerConfig> = {}, deps: BrokerDeps = {}): Promise<TestBroker> {
  const config: BrokerConfig = {
    ...defaultConfig(),
    host: '127.0.0.1',
    wsPort: 0,
    tcpPort: 0,
    shutdownTimeout: 2000,
    logLevel: 'silent',
    ...overrides,
  };
  const broker = new Broker(config, createLogger(process.env.STRANDS_TEST_LOG === '1' ? 'debug' : config.logLevel), deps);
  await broker.start();
  return {
    broker,
    wsPort: broker.wsPort,
    tcpPort: broker.tcpPort,
    url: (path = '/') => `ws://127.0.0.1:${broker.wsPort}${path}`,
    stop: () => broker.stop(),
  };
}
