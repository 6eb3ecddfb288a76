package io.auxia.decision.client;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.Status;
import java.lang.System.Logger;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/** A client's record of schema drift: counts, a warning once per RPC and place, a listener. */
final class DriftReports {
  private static final Logger LOG = System.getLogger("io.auxia.decision.client.drift");

  private final DriftListener listener;
  private final boolean strict;
  private final Map<String, Map<String, AtomicLong>> counts = new ConcurrentHashMap<>();

  DriftReports(DriftListener listener, boolean strict) {
    this.listener = listener;
    this.strict = strict;
  }

  boolean strict() {
    return strict;
  }

  /** Counts the drifts of one answer, passes each on, and warns of the places new to it. */
  void report(String method, List<Drift> drifts, boolean warn) {
    Map<String, AtomicLong> byPlace = counts.computeIfAbsent(method, name -> new ConcurrentHashMap<>());
    Map<String, Drift> firsts = new LinkedHashMap<>();
    for (Drift drift : drifts) {
      firsts.putIfAbsent(drift.place(), drift);
    }
    for (Map.Entry<String, Drift> first : firsts.entrySet()) {
      long before = byPlace.computeIfAbsent(first.getKey(), place -> new AtomicLong()).getAndIncrement();
      if (before == 0 && warn && !strict) {
        LOG.log(Logger.Level.WARNING, Drift.describe(method, first.getValue()));
      }
    }
    if (listener != null) {
      for (Drift drift : drifts) {
        listener.onDrift(method, drift);
      }
    }
  }

  /** {@return how many answers held drift, by RPC, then by place: a copy} */
  Map<String, Map<String, Long>> counts() {
    Map<String, Map<String, Long>> copy = new LinkedHashMap<>();
    counts.forEach(
        (method, byPlace) -> {
          Map<String, Long> places = new LinkedHashMap<>();
          byPlace.forEach((place, count) -> places.put(place, count.get()));
          copy.put(method, Map.copyOf(places));
        });
    return Map.copyOf(copy);
  }

  /** {@return the error of an answer with drift under strict responses: UNKNOWN, each path} */
  static ApiError error(String method, List<Drift> drifts, int httpStatus) {
    Drift first = drifts.get(0);
    String more = drifts.size() > 1 ? " (and " + (drifts.size() - 1) + " more)" : "";
    String message =
        "the server's answer to " + method + " holds what the schema does not know: "
            + first.kind() + " at " + (first.path().isEmpty() ? "the root" : first.path()) + ": "
            + first.detail() + more;
    BadRequest.Builder violations = BadRequest.newBuilder();
    for (Drift drift : drifts) {
      violations.addFieldViolationsBuilder()
          .setField(drift.path())
          .setDescription(drift.kind() + ": " + drift.detail());
    }
    Status status =
        Status.newBuilder()
            .setCode(Code.UNKNOWN_VALUE)
            .setMessage(message)
            .addDetails(Any.pack(violations.build()))
            .build();
    return ApiError.withStatus(status, httpStatus);
  }
}
