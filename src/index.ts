export { Broker } from './broker';
export { defaultConfig, resolveConfig, SETTINGS, ConfigError, type BrokerConfig } from './config';
export { createLogger } from './logger';
export * from './sdk/index';
