export {
  StrandsBackend,
  type ClientContext,
  type ConnectionDecision,
  type ConnectionRequest,
  type StrandsBackendOptions,
} from './backend';
export { startEchoBackend } from './echo-backend';
