export {
  worthLazyPulling,
  DEFAULT_LAZY_PULLING_POLICY,
  type ImageSizeFacts,
  type LazyPullingPolicy,
  type LazyPullingVerdict,
} from './policy.js';
