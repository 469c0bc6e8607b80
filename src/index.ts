/**
 * weft: contracts, RPC, registry, an HTTP gateway and cluster-wide
 * WebSocket push by business id.
 *
 * @module
 */
export { defineContract, param, Type, isSimpleSchema } from './contract/contract.js';
export type {
  AnyContract,
  ArgsOf,
  ClientMessageDescriptor,
  Contract,
  ContractDescriptor,
  ContractSpec,
  Implementation,
  MessageDef,
  MessageHandlers,
  MessageMap,
  MessageParams,
  MessageReturn,
  MessageSession,
  MethodDef,
  MethodDescriptor,
  NoneDeclared,
  ParamDef,
  ParamOptions,
  Proxy,
  PushDescriptor,
  PushMap,
  PushPayload,
  ReturnOf,
  SelectStrategy,
  Static,
  TSchema,
} from './contract/contract.js';
export type { HttpVerb, ParamSource } from './contract/routes.js';

export { ERRORS, WeftError, BusinessException, UserFriendlyException, ValidationException, isWeftError } from './errors.js';
export type { ErrorCode, ErrorSpec, ValidError, WireError } from './errors.js';

export { createHost, implement } from './host/host.js';
export type { Host, HostOptions, ServiceBinding, ServiceContext } from './host/host.js';
export type { HostContext, HostedService, ModuleInstance, WeftModule } from './host/module.js';

export { createClient } from './cluster-client/cluster-client.js';
export type { ClusterClient } from './cluster-client/cluster-client.js';

export { createGateway } from './gateway/gateway.js';
export type { Gateway, GatewayOptions } from './gateway/gateway.js';
export type { AuthRequest, Authenticate, Identity } from './gateway/auth/auth-request.js';
export { currentIdentity } from './gateway/auth/identity-header.js';

export { memoryCluster, redisCluster } from './node/cluster.js';
export type { Cluster, ClusterBackend, ClusterMembership, RedisClusterOptions } from './node/cluster.js';
export type { NodeOptions, NodeStats } from './node/node.js';

// What a third-party cluster backend implements: a registry and a session directory.
export type { NodeRecord, NodeRole, Registry, RegistryListener, RegistryView, ServiceRecord } from './registry/registry.js';
export type { BusinessSessions, HeldSessions, SessionDirectory } from './directory/session-directory.js';
export type {
  BusinessPresenceEvent,
  DescribedSession,
  PresenceEvent,
  PresenceListener,
  SessionPresenceEvent,
  SessionRecord,
} from './directory/session-directory.js';
export { SessionIndex } from './directory/session-index.js';

export { currentContext } from './rpc/context.js';
export type { CallContext } from './rpc/context.js';
export type { CallOptions } from './rpc/rpc-client.js';

export { WebSocketModule, WsHostModule } from './websocket/websocket-module.js';
export { WsAppServiceBase } from './websocket/ws-app-service.js';
export type { BusinessSessionIds, PushOptions, SessionInfo, SessionManager } from './websocket/session-manager.js';
export type { WsSession } from './websocket/ws-session.js';
export type { SessionDetails } from './websocket/presence.js';
export { typedPush } from './websocket/typed-push.js';
export type { PushName, PushTarget, TypedPush } from './websocket/typed-push.js';
export type { WsHistoryOptions } from './websocket/history-options.js';
export type { PushMessage } from './push/push-client.js';

export { DEFAULTS } from './defaults.js';
export type { Logger } from './logger.js';
