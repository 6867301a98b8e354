// EmmaClient: Decide, Activate and Reward against Emma's decision service, from Node.js.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const here = dirname(fileURLToPath(import.meta.url));
// In the repository the protos live at its root; a packed module carries its own copy.
const PROTO_ROOTS = [join(here, "..", "protos"), join(here, "..", "..", "..", "protos")];
const DECISION_PROTO = "emma/decision/v1/decision.proto";

const DEFAULT_DEADLINE_MS = 2000;

// UNAVAILABLE means the call never reached a server that could answer: gRPC retries it with
// backoff within the deadline. Reward carries an idempotency key, so a retry counts once.
const SERVICE_CONFIG = {
  methodConfig: [
    {
      name: [{ service: "emma.decision.v1.DecisionService" }],
      retryPolicy: {
        maxAttempts: 4,
        initialBackoff: "0.05s",
        maxBackoff: "0.5s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    },
  ],
};

/** An error from Emma: the gRPC status code's name, the service's message, the method. */
export class EmmaError extends Error {
  constructor(method, error) {
    super(`${method}: ${grpc.status[error.code]}: ${error.details}`);
    this.name = "EmmaError";
    this.method = method;
    this.code = error.code;
    this.codeName = grpc.status[error.code];
    this.details = error.details;
  }
}

function loadDecisionService() {
  const root = PROTO_ROOTS.find((dir) => existsSync(join(dir, DECISION_PROTO)));
  if (!root) throw new Error(`cannot find ${DECISION_PROTO} under ${PROTO_ROOTS.join(" or ")}`);
  const definition = protoLoader.loadSync(DECISION_PROTO, {
    includeDirs: [root],
    // Field names as in the protos, enums as names ("CHANNEL_PUSH"), 64-bit numbers as numbers.
    keepCase: true,
    enums: String,
    longs: Number,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).emma.decision.v1.DecisionService;
}

const IDENTIFIER_KINDS = ["customer_id", "loyalty_card", "app_user_id", "email_sha256", "device_id"];

/** A CustomerRef from {loyaltyCard: "1001"}-style objects or a "loyalty_card:1001" string. */
export function customerRef(customer) {
  let kind;
  let value;
  if (typeof customer === "string") {
    [kind, value] = customer.split(/:(.*)/s);
  } else {
    const given = Object.entries(customer ?? {}).filter(([, v]) => v !== undefined && v !== null);
    if (given.length !== 1) throw new TypeError("give exactly one customer identifier");
    [[kind, value]] = given;
    kind = kind.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  }
  if (!IDENTIFIER_KINDS.includes(kind)) {
    throw new TypeError(`customer kind ${JSON.stringify(kind)}: one of ${IDENTIFIER_KINDS.join(", ")}`);
  }
  if (!value) throw new TypeError("customer value must not be empty");
  return { kind: `IDENTIFIER_KIND_${kind.toUpperCase()}`, value };
}

const enumName = (prefix, name) => `${prefix}_${String(name).toUpperCase()}`;
const timestamp = (date) => {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
};
const fromTimestamp = (ts) => (ts ? new Date(Number(ts.seconds) * 1000 + ts.nanos / 1e6) : null);
const fromEnum = (prefix, value) => value.slice(prefix.length + 1).toLowerCase();

/** The answer to Decide, with channel and degraded parts as lower-case names. */
function decisionFromProto(response) {
  return {
    eventId: response.event_id,
    offer: response.offer
      ? {
          offerId: response.offer.offer_id,
          title: response.offer.title,
          description: response.offer.description,
          category: response.offer.category,
          payload: response.offer.payload,
        }
      : null,
    channel: fromEnum("CHANNEL", response.channel),
    sendAt: fromTimestamp(response.send_at),
    probability: response.probability,
    modelVersion: response.model_version,
    reasons: response.reasons.map((r) => ({ code: r.code, detail: r.detail })),
    degraded: response.degraded.map((d) => fromEnum("DEGRADED_PART", d)),
    traceId: response.trace_id,
    fallback: response.fallback,
    candidateCount: response.candidate_count,
  };
}

export class EmmaClient {
  /**
   * @param {string} address host:port of the decision service, or dns:///name:port
   * @param {object} [options]
   * @param {number} [options.deadlineMs] default deadline of every call
   * @param {grpc.ChannelCredentials} [options.credentials] TLS; insecure when absent
   */
  constructor(address = "127.0.0.1:50051", { deadlineMs = DEFAULT_DEADLINE_MS, credentials } = {}) {
    const Service = loadDecisionService();
    this.deadlineMs = deadlineMs;
    this.stub = new Service(address, credentials ?? grpc.credentials.createInsecure(), {
      "grpc.service_config": JSON.stringify(SERVICE_CONFIG),
      "grpc.lb_policy_name": "round_robin",
    });
  }

  close() {
    this.stub.close();
  }

  #call(method, request, deadlineMs) {
    const deadline = new Date(Date.now() + (deadlineMs ?? this.deadlineMs));
    return new Promise((resolve, reject) => {
      this.stub[method](request, { deadline }, (error, response) =>
        error ? reject(new EmmaError(method, error)) : resolve(response),
      );
    });
  }

  /**
   * Asks which offer, on which channel and when, for this customer right now.
   * @param {string|object} customer "loyalty_card:1001" or {loyaltyCard: "1001"}
   * @param {object} [options] touchpoint ("app", "pos", ...), storeId, location {latitude,
   *   longitude}, basket [{productId, category, quantity, amount}], allowedChannels
   *   ["push", ...], budgetMs, deferredActivation, requestId, deadlineMs
   */
  async decide(customer, options = {}) {
    const request = {
      customer: customerRef(customer),
      touchpoint: enumName("TOUCHPOINT", options.touchpoint ?? "app"),
      store_id: options.storeId ?? "",
      allowed_channels: (options.allowedChannels ?? []).map((c) => enumName("CHANNEL", c)),
      deferred_activation: Boolean(options.deferredActivation),
      request_id: options.requestId ?? "",
    };
    if (options.location) request.location = options.location;
    if (options.basket) {
      request.basket = {
        currency: options.currency ?? "EUR",
        items: options.basket.map((item) => ({
          product_id: item.productId,
          category: item.category ?? "",
          quantity: item.quantity ?? 1,
          amount: item.amount ?? 0,
        })),
      };
    }
    if (options.budgetMs !== undefined) {
      const ms = options.budgetMs;
      request.budget = { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) };
    }
    return decisionFromProto(await this.#call("Decide", request, options.deadlineMs));
  }

  /** Confirms a deferred decision was shown; false when it was already activated. */
  async activate(eventId, { time = new Date(), deadlineMs } = {}) {
    const response = await this.#call("Activate", { event_id: eventId, time: timestamp(time) }, deadlineMs);
    return response.activated;
  }

  /** Reports the outcome of a decision; a fresh idempotency key makes retries count once. */
  async reward(eventId, value, { kind = "", time = new Date(), idempotencyKey = randomUUID(), deadlineMs } = {}) {
    const request = { event_id: eventId, value, kind, time: timestamp(time), idempotency_key: idempotencyKey };
    const response = await this.#call("Reward", request, deadlineMs);
    return response.accepted;
  }
}
