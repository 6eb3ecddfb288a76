package io.auxia.decision.testing;

import com.google.protobuf.Message;
import com.google.protobuf.Timestamp;
import com.google.rpc.Code;
import io.auxia.decision.client.ApiError;
import io.auxia.decision.client.ProtoJsonHttp;
import io.auxia.decision.client.Sendable;
import io.auxia.decision.emulator.v1.ClearFaultsRequest;
import io.auxia.decision.emulator.v1.ClearFaultsResponse;
import io.auxia.decision.emulator.v1.Clock;
import io.auxia.decision.emulator.v1.CreateFaultRequest;
import io.auxia.decision.emulator.v1.ExplainDecisionRequest;
import io.auxia.decision.emulator.v1.ExplainDecisionResponse;
import io.auxia.decision.emulator.v1.Fault;
import io.auxia.decision.emulator.v1.GetClockRequest;
import io.auxia.decision.emulator.v1.GetClockResponse;
import io.auxia.decision.emulator.v1.JournalEntry;
import io.auxia.decision.emulator.v1.ListDecisionsRequest;
import io.auxia.decision.emulator.v1.ListDecisionsResponse;
import io.auxia.decision.emulator.v1.ListFaultsRequest;
import io.auxia.decision.emulator.v1.ListFaultsResponse;
import io.auxia.decision.emulator.v1.ListInteractionsRequest;
import io.auxia.decision.emulator.v1.ListInteractionsResponse;
import io.auxia.decision.emulator.v1.ListJournalRequest;
import io.auxia.decision.emulator.v1.ListJournalResponse;
import io.auxia.decision.emulator.v1.ListProjectsRequest;
import io.auxia.decision.emulator.v1.ListProjectsResponse;
import io.auxia.decision.emulator.v1.ListRecentDecisionsRequest;
import io.auxia.decision.emulator.v1.ListRecentDecisionsResponse;
import io.auxia.decision.emulator.v1.LoggedInteraction;
import io.auxia.decision.emulator.v1.ProjectView;
import io.auxia.decision.emulator.v1.RecentDecision;
import io.auxia.decision.emulator.v1.ResetRequest;
import io.auxia.decision.emulator.v1.ResetResponse;
import io.auxia.decision.emulator.v1.ServedDecision;
import io.auxia.decision.emulator.v1.SetClockRequest;
import io.auxia.decision.emulator.v1.SetClockResponse;
import io.auxia.decision.emulator.v1.Verdict;
import io.auxia.decision.model.GetTreatmentsRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * The emulator admin API of a running server ({@code /emulator/v1/}), as typed calls over
 * {@code java.net.http} and proto3 JSON.
 *
 * <p>Every call sends the admin key in the {@code x-admin-key} header and throws {@link ApiError}
 * when the server refuses it. Lists follow every page. The client is thread-safe.
 */
public final class EmulatorAdmin {
  /** The header that carries the admin key. */
  public static final String ADMIN_KEY_HEADER = "x-admin-key";

  private final String baseUrl;
  private final Map<String, String> headers;
  private final ProtoJsonHttp transport;

  /**
   * Makes a client of a server's admin API.
   *
   * @param baseUrl the server's REST base URL ({@code http://127.0.0.1:8080})
   * @param adminKey an admin key of the server's seed ({@code adminKeys})
   * @throws IllegalArgumentException as {@link #EmulatorAdmin(String, String, HttpClient,
   *     Duration)} does
   */
  public EmulatorAdmin(String baseUrl, String adminKey) {
    this(baseUrl, adminKey, HttpClient.newHttpClient(), Duration.ofSeconds(30));
  }

  /**
   * Makes a client of a server's admin API.
   *
   * @param baseUrl the server's REST base URL ({@code http://127.0.0.1:8080})
   * @param adminKey an admin key of the server's seed ({@code adminKeys})
   * @param http the HTTP client to send with
   * @param timeout how long each call may take, from sending to the end of the answer
   * @throws IllegalArgumentException when the key holds a character a header cannot carry, or
   *     the base URL is no http(s) URL or carries credentials, a query or a fragment (the key is
   *     never shown)
   */
  public EmulatorAdmin(String baseUrl, String adminKey, HttpClient http, Duration timeout) {
    Sendable.checkKey(adminKey, "the admin key");
    Sendable.checkBaseUrl(baseUrl);
    this.baseUrl = baseUrl.replaceAll("/+$", "");
    this.headers = Map.of(ADMIN_KEY_HEADER, adminKey);
    this.transport = new ProtoJsonHttp(http, timeout);
  }

  /**
   * Calls one admin RPC by its name ({@code ListFaults}).
   *
   * @param method the RPC's name in {@code io.auxia.decision.emulator.v1.EmulatorService}
   * @param request its request
   * @param prototype any message of its response type
   * @param <M> the response type
   * @return the response
   * @throws ApiError when the call fails
   */
  public <M extends Message> M call(String method, Message request, M prototype) {
    URI uri = URI.create(baseUrl + "/emulator/v1/" + method);
    return transport.call(uri, headers, request, prototype);
  }

  /** Calls a list RPC page after page, from the request's page token; returns every item. */
  private <Q extends Message, A extends Message, T> List<T> allPages(
      String method,
      Q request,
      A prototype,
      Function<A, List<T>> items,
      Function<A, String> nextPageToken,
      BiFunction<Q, String, Q> withPageToken) {
    List<T> found = new ArrayList<>();
    Q page = request;
    while (true) {
      A answer = call(method, page, prototype);
      found.addAll(items.apply(answer));
      String next = nextPageToken.apply(answer);
      if (next.isEmpty()) {
        return found;
      }
      page = withPageToken.apply(page, next);
    }
  }

  /**
   * Puts the whole server back as its seed made it: the calls' writes are forgotten, every fault
   * cleared, the clock set back as the server started.
   *
   * @return the clock after the reset
   */
  public Clock reset() {
    return reset("");
  }

  /**
   * Puts one project back as the seed made it (the clock and faults stay).
   *
   * @param projectId the project; empty: the whole server
   * @return the clock after the reset
   */
  public Clock reset(String projectId) {
    ResetRequest request = ResetRequest.newBuilder().setProjectId(projectId).build();
    return call("Reset", request, ResetResponse.getDefaultInstance()).getClock();
  }

  /**
   * Returns every stored interaction, oldest first.
   *
   * @return the interactions with their sequence numbers
   */
  public List<LoggedInteraction> listInteractions() {
    return listInteractions(ListInteractionsRequest.getDefaultInstance());
  }

  /**
   * Returns the stored interactions that match every filter of a request, oldest first (newest
   * first when it asks), all pages.
   *
   * @param request the filters and order (its page token: where to start)
   * @return the interactions with their sequence numbers
   */
  public List<LoggedInteraction> listInteractions(ListInteractionsRequest request) {
    return allPages(
        "ListInteractions",
        request,
        ListInteractionsResponse.getDefaultInstance(),
        ListInteractionsResponse::getInteractionsList,
        ListInteractionsResponse::getNextPageToken,
        (page, token) -> page.toBuilder().setPageToken(token).build());
  }

  /**
   * Returns every decision of GetTreatments that served treatments, oldest first.
   *
   * @return the decisions
   */
  public List<ServedDecision> listDecisions() {
    return listDecisions(ListDecisionsRequest.getDefaultInstance());
  }

  /**
   * Returns the decisions that served treatments and match every filter, oldest first (newest
   * first when the request asks), all pages.
   *
   * @param request the filters and order (its page token: where to start)
   * @return the decisions
   */
  public List<ServedDecision> listDecisions(ListDecisionsRequest request) {
    return allPages(
        "ListDecisions",
        request,
        ListDecisionsResponse.getDefaultInstance(),
        ListDecisionsResponse::getDecisionsList,
        ListDecisionsResponse::getNextPageToken,
        (page, token) -> page.toBuilder().setPageToken(token).build());
  }

  /**
   * Returns the last GetTreatments calls answered (served or not), newest first.
   *
   * @param request the filters
   * @return the calls: request and response
   */
  public List<RecentDecision> listRecentDecisions(ListRecentDecisionsRequest request) {
    return call("ListRecentDecisions", request, ListRecentDecisionsResponse.getDefaultInstance())
        .getDecisionsList();
  }

  /**
   * Returns what GetTreatments would give each treatment for a request now, and why; nothing is
   * served or stored.
   *
   * @param request a GetTreatments request, as a client would send it
   * @return a verdict per treatment and surface
   */
  public List<Verdict> explainDecision(GetTreatmentsRequest request) {
    ExplainDecisionRequest explain =
        ExplainDecisionRequest.newBuilder().setRequest(request).build();
    return call("ExplainDecision", explain, ExplainDecisionResponse.getDefaultInstance())
        .getVerdictsList();
  }

  /**
   * Returns the projects with their treatment types, data fields and treatments.
   *
   * @return the projects
   */
  public List<ProjectView> listProjects() {
    return call("ListProjects", ListProjectsRequest.getDefaultInstance(),
            ListProjectsResponse.getDefaultInstance())
        .getProjectsList();
  }

  /**
   * Returns the server's clock.
   *
   * @return the time it follows, and whether it is frozen
   */
  public Clock getClock() {
    return call("GetClock", GetClockRequest.getDefaultInstance(),
            GetClockResponse.getDefaultInstance())
        .getClock();
  }

  /**
   * Changes the server's clock as a request says (freeze, advance, real time).
   *
   * @param request the change
   * @return the clock as the change left it
   */
  public Clock setClock(SetClockRequest request) {
    return call("SetClock", request, SetClockResponse.getDefaultInstance()).getClock();
  }

  /**
   * Freezes the server's clock at a time.
   *
   * @param at the time, earlier or later than now
   * @return the clock
   */
  public Clock freezeClock(Instant at) {
    return setClock(SetClockRequest.newBuilder().setFreezeTime(timestamp(at)).build());
  }

  /**
   * Moves the server's clock forward; a frozen clock stays frozen.
   *
   * @param by a positive duration
   * @return the clock
   */
  public Clock advanceClock(Duration by) {
    com.google.protobuf.Duration advance =
        com.google.protobuf.Duration.newBuilder()
            .setSeconds(by.getSeconds())
            .setNanos(by.getNano())
            .build();
    return setClock(SetClockRequest.newBuilder().setAdvance(advance).build());
  }

  /**
   * Gives the server's clock back to the system's time, unshifted.
   *
   * @return the clock
   */
  public Clock useRealTime() {
    return setClock(SetClockRequest.newBuilder().setRealTime(true).build());
  }

  /**
   * Arms a fault as the admin API defines it.
   *
   * @param fault the fault: a method, which calls (count or fraction), a code and/or a delay
   * @return the fault with its name
   */
  public Fault createFault(Fault fault) {
    CreateFaultRequest request = CreateFaultRequest.newBuilder().setFault(fault).build();
    return call("CreateFault", request, Fault.getDefaultInstance());
  }

  /**
   * Fails the next calls of a method with a code.
   *
   * @param method an RPC's short name ({@code GetTreatments}), or {@code *} for every method
   * @param code the code they fail with ({@code UNAVAILABLE}: HTTP 503)
   * @param count how many calls
   * @return the fault
   */
  public Fault failNext(String method, Code code, int count) {
    return createFault(Fault.newBuilder().setMethod(method).setCount(count).setCode(code).build());
  }

  /**
   * Delays the next calls of a method; they then run.
   *
   * @param method an RPC's short name, or {@code *}
   * @param delay how long each waits, up to 60 s
   * @param count how many calls
   * @return the fault
   */
  public Fault delayNext(String method, Duration delay, int count) {
    com.google.protobuf.Duration wait =
        com.google.protobuf.Duration.newBuilder()
            .setSeconds(delay.getSeconds())
            .setNanos(delay.getNano())
            .build();
    return createFault(Fault.newBuilder().setMethod(method).setCount(count).setDelay(wait).build());
  }

  /**
   * Fails a fraction of the calls of a method, drawn from a seed: the same calls on every run.
   *
   * @param method an RPC's short name, or {@code *}
   * @param fraction the share of calls, above 0 and at most 1
   * @param code the code they fail with
   * @param randomSeed the seed of the draws
   * @return the fault, armed until cleared
   */
  public Fault failFraction(String method, double fraction, Code code, long randomSeed) {
    return createFault(
        Fault.newBuilder()
            .setMethod(method)
            .setFraction(fraction)
            .setCode(code)
            .setRandomSeed(randomSeed)
            .build());
  }

  /**
   * Answers every call of a method (over REST) as a newer version of the API could: with fields
   * and enum values the schema lacks ({@code docs/emulator.md} has the rules), until cleared.
   *
   * @param method an RPC's short name, or {@code *}
   * @return the fault
   */
  public Fault evolve(String method) {
    return createFault(Fault.newBuilder().setMethod(method).setFraction(1.0).setEvolve(true).build());
  }

  /**
   * Answers the next calls of a method (over REST) as a newer version of the API could.
   *
   * @param method an RPC's short name, or {@code *}
   * @param count how many calls
   * @return the fault
   */
  public Fault evolve(String method, int count) {
    return createFault(Fault.newBuilder().setMethod(method).setCount(count).setEvolve(true).build());
  }

  /**
   * Returns the calls the server answered, as its request journal keeps them, all pages.
   *
   * @return the entries, oldest first
   */
  public List<JournalEntry> listJournal() {
    return listJournal(ListJournalRequest.getDefaultInstance());
  }

  /**
   * Returns the journal's entries that match every filter, all pages.
   *
   * <p>Pages of 1,000, whatever the request's page size: each ListJournal call is journaled too,
   * so pages of one would never run out (as in the Python client).
   *
   * @param request the filters (its page token: where to start)
   * @return the entries
   */
  public List<JournalEntry> listJournal(ListJournalRequest request) {
    return allPages(
        "ListJournal",
        request.toBuilder().setPageSize(1000).build(),
        ListJournalResponse.getDefaultInstance(),
        ListJournalResponse::getEntriesList,
        ListJournalResponse::getNextPageToken,
        (page, token) -> page.toBuilder().setPageToken(token).build());
  }

  /**
   * Returns the armed faults, in the order they apply.
   *
   * @return the faults, with what is left of each
   */
  public List<Fault> listFaults() {
    return call("ListFaults", ListFaultsRequest.getDefaultInstance(),
            ListFaultsResponse.getDefaultInstance())
        .getFaultsList();
  }

  /**
   * Disarms every fault.
   *
   * @return how many there were
   */
  public int clearFaults() {
    return call("ClearFaults", ClearFaultsRequest.getDefaultInstance(),
            ClearFaultsResponse.getDefaultInstance())
        .getClearedCount();
  }

  private static Timestamp timestamp(Instant at) {
    return Timestamp.newBuilder().setSeconds(at.getEpochSecond()).setNanos(at.getNano()).build();
  }
}
