export * from './types.js';
export { defaultConfigPath, parseClusterConfig, readClusterConfig } from './read.js';
export {
  ClusterConfigError,
  formatKeyPath,
  requireEtcdNodes,
  validateClusterConfig,
  type ConfigProblem,
  type KeyPath,
  type Locate,
  type Position,
} from './validate.js';
