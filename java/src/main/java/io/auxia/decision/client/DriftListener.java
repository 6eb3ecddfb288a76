package io.auxia.decision.client;

/** Told of every drift of every answer: the RPC's name ({@code GetTreatments}) and the drift. */
@FunctionalInterface
public interface DriftListener {
  /**
   * Takes one drift of an answer.
   *
   * @param method the RPC's name
   * @param drift where the answer says what the schema does not know
   */
  void onDrift(String method, Drift drift);
}
