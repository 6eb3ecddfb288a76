package io.auxia.decision.client;

import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * When and how long a client waits before it sends a call again: the policy of the Python
 * client ({@code auxia_decision.RetryPolicy}), with the same defaults.
 *
 * <ul>
 *   <li>An answer of 429 or 503 is retried for every method: the server did not act on the call.
 *       A {@code Retry-After} header (seconds or an HTTP date) is honoured; when it asks for more
 *       than {@link #maxRetryAfter()} the error is thrown instead.
 *   <li>A connection that could not be opened is retried for every method: nothing was sent.
 *   <li>A timeout or a broken connection after the call was sent is retried only for the methods
 *       of {@link #safeToRepeat()} (GetDataFields, UpdateTreatment, GetTreatment,
 *       GetAllTreatments), since the server may have acted on it: a repeated
 *       LogTreatmentInteraction logs twice, InsertTreatment creates twice, GetTreatments counts
 *       as SENT twice.
 * </ul>
 *
 * <p>Waits grow exponentially from {@link #initialBackoff()} by {@link #multiplier()} up to
 * {@link #maxBackoff()}, with full jitter. {@link #maxAttempts()} counts the first attempt; 1
 * disables retries.
 */
public final class RetryPolicy {
  private static final RetryPolicy DEFAULTS =
      new RetryPolicy(
          4,
          Duration.ofMillis(200),
          Duration.ofSeconds(5),
          2.0,
          Duration.ofSeconds(30),
          Set.of(429, 503),
          Set.of("GetDataFields", "UpdateTreatment", "GetTreatment", "GetAllTreatments"));

  private final int maxAttempts;
  private final Duration initialBackoff;
  private final Duration maxBackoff;
  private final double multiplier;
  private final Duration maxRetryAfter;
  private final Set<Integer> retryHttpStatuses;
  private final Set<String> safeToRepeat;

  private RetryPolicy(
      int maxAttempts,
      Duration initialBackoff,
      Duration maxBackoff,
      double multiplier,
      Duration maxRetryAfter,
      Set<Integer> retryHttpStatuses,
      Set<String> safeToRepeat) {
    if (maxAttempts < 1) {
      throw new IllegalArgumentException("maxAttempts must be at least 1, got " + maxAttempts);
    }
    this.maxAttempts = maxAttempts;
    this.initialBackoff = initialBackoff;
    this.maxBackoff = maxBackoff;
    this.multiplier = multiplier;
    this.maxRetryAfter = maxRetryAfter;
    this.retryHttpStatuses = Set.copyOf(retryHttpStatuses);
    this.safeToRepeat = Set.copyOf(safeToRepeat);
  }

  /** {@return the default policy: up to 4 attempts, 200 ms to 5 s of backoff} */
  public static RetryPolicy defaults() {
    return DEFAULTS;
  }

  /** {@return a policy that never retries} */
  public static RetryPolicy none() {
    return DEFAULTS.withMaxAttempts(1);
  }

  /**
   * Returns this policy with another number of attempts.
   *
   * @param attempts how many attempts at most, the first included; 1 disables retries
   * @return the new policy
   */
  public RetryPolicy withMaxAttempts(int attempts) {
    return new RetryPolicy(
        attempts, initialBackoff, maxBackoff, multiplier, maxRetryAfter, retryHttpStatuses,
        safeToRepeat);
  }

  /**
   * Returns this policy with other backoff bounds.
   *
   * @param initial the ceiling of the first wait
   * @param max the ceiling of every wait
   * @return the new policy
   */
  public RetryPolicy withBackoff(Duration initial, Duration max) {
    return new RetryPolicy(
        maxAttempts, initial, max, multiplier, maxRetryAfter, retryHttpStatuses, safeToRepeat);
  }

  /**
   * Returns this policy with another set of methods retried after a timeout or broken connection.
   *
   * @param methods RPC short names, such as {@code GetDataFields}
   * @return the new policy
   */
  public RetryPolicy withSafeToRepeat(Set<String> methods) {
    return new RetryPolicy(
        maxAttempts, initialBackoff, maxBackoff, multiplier, maxRetryAfter, retryHttpStatuses,
        methods);
  }

  /** {@return how many attempts at most, the first included} */
  public int maxAttempts() {
    return maxAttempts;
  }

  /** {@return the ceiling of the first wait} */
  public Duration initialBackoff() {
    return initialBackoff;
  }

  /** {@return the ceiling of every wait} */
  public Duration maxBackoff() {
    return maxBackoff;
  }

  /** {@return by how much the ceiling grows after each attempt} */
  public double multiplier() {
    return multiplier;
  }

  /** {@return the longest {@code Retry-After} the client waits for; a longer one is thrown} */
  public Duration maxRetryAfter() {
    return maxRetryAfter;
  }

  /** {@return the HTTP statuses retried for every method (429 and 503)} */
  public Set<Integer> retryHttpStatuses() {
    return retryHttpStatuses;
  }

  /** {@return the methods retried after a timeout or a broken connection} */
  public Set<String> safeToRepeat() {
    return safeToRepeat;
  }

  /**
   * Returns a jittered wait before the attempt after {@code attempt}.
   *
   * @param attempt the attempt that just failed, from 1
   * @return a wait between zero and the attempt's ceiling
   */
  public Duration backoff(int attempt) {
    double ceiling =
        Math.min(
            maxBackoff.toNanos(), initialBackoff.toNanos() * Math.pow(multiplier, attempt - 1));
    return Duration.ofNanos((long) (ThreadLocalRandom.current().nextDouble() * ceiling));
  }

  /**
   * Returns the wait a {@code Retry-After} header asks for: seconds, or an HTTP date.
   *
   * @param value the header's value, or null
   * @return the wait (zero for a date in the past), or empty when there is none or it is not one
   */
  public static Optional<Duration> retryAfter(String value) {
    if (value == null) {
      return Optional.empty();
    }
    String text = value.strip();
    if (!text.isEmpty() && text.chars().allMatch(Character::isDigit)) {
      try {
        return Optional.of(Duration.ofSeconds(Long.parseLong(text)));
      } catch (NumberFormatException error) {
        return Optional.empty();
      }
    }
    try {
      ZonedDateTime moment = ZonedDateTime.parse(text, DateTimeFormatter.RFC_1123_DATE_TIME);
      Duration wait = Duration.between(ZonedDateTime.now(moment.getZone()), moment);
      return Optional.of(wait.isNegative() ? Duration.ZERO : wait);
    } catch (DateTimeParseException error) {
      return Optional.empty();
    }
  }
}
