"""The slice of Linear's GraphQL schema the stand-in serves, written for it from the contract
(../shared/api-contracts/linear/CONTRACT.md): the types, arguments, filters and comparators the contract lists,
with Linear's names, nullability and argument types, so a document that validates here validates against
Linear's SDL too (tests/test_linear_contract.py checks the manifest's documents against the contract's slice)."""

from __future__ import annotations

__all__ = ["SDL"]

_COMPARATORS = """
input StringComparator {
  eq: String neq: String in: [String!] nin: [String!] eqIgnoreCase: String neqIgnoreCase: String
  contains: String containsIgnoreCase: String notContains: String notContainsIgnoreCase: String
  startsWith: String startsWithIgnoreCase: String notStartsWith: String endsWith: String notEndsWith: String
}
input NullableStringComparator {
  eq: String neq: String in: [String!] nin: [String!] eqIgnoreCase: String neqIgnoreCase: String
  contains: String containsIgnoreCase: String notContains: String notContainsIgnoreCase: String
  startsWith: String startsWithIgnoreCase: String notStartsWith: String endsWith: String notEndsWith: String
  null: Boolean
}
input NumberComparator { eq: Float neq: Float in: [Float!] nin: [Float!] lt: Float lte: Float gt: Float gte: Float }
input NullableNumberComparator {
  eq: Float neq: Float in: [Float!] nin: [Float!] lt: Float lte: Float gt: Float gte: Float null: Boolean
}
input EstimateComparator {
  eq: Float neq: Float in: [Float!] nin: [Float!] lt: Float lte: Float gt: Float gte: Float null: Boolean
  and: [NullableNumberComparator!] or: [NullableNumberComparator!]
}
input DateComparator {
  eq: DateTimeOrDuration neq: DateTimeOrDuration in: [DateTimeOrDuration!] nin: [DateTimeOrDuration!]
  lt: DateTimeOrDuration lte: DateTimeOrDuration gt: DateTimeOrDuration gte: DateTimeOrDuration
}
input NullableDateComparator {
  eq: DateTimeOrDuration neq: DateTimeOrDuration in: [DateTimeOrDuration!] nin: [DateTimeOrDuration!]
  lt: DateTimeOrDuration lte: DateTimeOrDuration gt: DateTimeOrDuration gte: DateTimeOrDuration null: Boolean
}
input NullableTimelessDateComparator {
  eq: TimelessDateOrDuration neq: TimelessDateOrDuration in: [TimelessDateOrDuration!]
  nin: [TimelessDateOrDuration!] lt: TimelessDateOrDuration lte: TimelessDateOrDuration
  gt: TimelessDateOrDuration gte: TimelessDateOrDuration null: Boolean
}
input IDComparator { eq: ID neq: ID in: [ID!] nin: [ID!] }
input IssueIDComparator { eq: ID neq: ID in: [ID!] nin: [ID!] }
input BooleanComparator { eq: Boolean neq: Boolean }
"""

_FILTERS = """
input IssueFilter {
  id: IssueIDComparator number: NumberComparator title: StringComparator description: NullableStringComparator
  team: TeamFilter state: WorkflowStateFilter assignee: NullableUserFilter creator: NullableUserFilter
  labels: IssueLabelCollectionFilter estimate: EstimateComparator priority: NullableNumberComparator
  createdAt: DateComparator updatedAt: DateComparator startedAt: NullableDateComparator
  completedAt: NullableDateComparator canceledAt: NullableDateComparator archivedAt: NullableDateComparator
  dueDate: NullableTimelessDateComparator
  and: [IssueFilter!] or: [IssueFilter!]
}
input TeamFilter {
  id: IDComparator key: StringComparator name: StringComparator description: NullableStringComparator
  createdAt: DateComparator and: [TeamFilter!] or: [TeamFilter!]
}
input WorkflowStateFilter {
  id: IDComparator name: StringComparator type: StringComparator description: StringComparator
  position: NumberComparator team: TeamFilter and: [WorkflowStateFilter!] or: [WorkflowStateFilter!]
}
input NullableUserFilter {
  id: IDComparator name: StringComparator displayName: StringComparator email: StringComparator
  active: BooleanComparator admin: BooleanComparator isMe: BooleanComparator null: Boolean
  and: [NullableUserFilter!] or: [NullableUserFilter!]
}
input UserFilter {
  id: IDComparator name: StringComparator displayName: StringComparator email: StringComparator
  active: BooleanComparator admin: BooleanComparator isMe: BooleanComparator
  and: [UserFilter!] or: [UserFilter!]
}
input IssueLabelFilter {
  id: IDComparator name: StringComparator and: [IssueLabelFilter!] or: [IssueLabelFilter!]
}
input IssueLabelCollectionFilter {
  id: IDComparator name: StringComparator some: IssueLabelFilter every: IssueLabelFilter
  length: NumberComparator null: Boolean and: [IssueLabelCollectionFilter!] or: [IssueLabelCollectionFilter!]
}
"""

_TYPES = """
scalar DateTime
scalar DateTimeOrDuration
scalar TimelessDate
scalar TimelessDateOrDuration
enum PaginationOrderBy { createdAt updatedAt }
type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
type Team { id: ID! key: String! name: String! description: String createdAt: DateTime! }
type User {
  id: ID! name: String! displayName: String! email: String! active: Boolean! admin: Boolean! createdAt: DateTime!
}
type WorkflowState { id: ID! name: String! type: String! }
type IssueLabel { id: ID! name: String! }
type Project { id: ID! name: String! }
type Cycle { id: ID! number: Float! }
type Issue {
  id: ID! identifier: String! number: Float! title: String! description: String
  state: WorkflowState! team: Team! assignee: User creator: User
  estimate: Float priority: Float! priorityLabel: String!
  labels(after: String, before: String, filter: IssueLabelFilter, first: Int, includeArchived: Boolean, last: Int,
         orderBy: PaginationOrderBy): IssueLabelConnection!
  labelIds: [String!]! branchName: String! url: String!
  createdAt: DateTime! updatedAt: DateTime! startedAt: DateTime completedAt: DateTime canceledAt: DateTime
  archivedAt: DateTime dueDate: TimelessDate project: Project cycle: Cycle
}
type IssueEdge { cursor: String! node: Issue! }
type IssueConnection { edges: [IssueEdge!]! nodes: [Issue!]! pageInfo: PageInfo! }
type TeamEdge { cursor: String! node: Team! }
type TeamConnection { edges: [TeamEdge!]! nodes: [Team!]! pageInfo: PageInfo! }
type UserEdge { cursor: String! node: User! }
type UserConnection { edges: [UserEdge!]! nodes: [User!]! pageInfo: PageInfo! }
type IssueLabelEdge { cursor: String! node: IssueLabel! }
type IssueLabelConnection { edges: [IssueLabelEdge!]! nodes: [IssueLabel!]! pageInfo: PageInfo! }
type Query {
  issues(after: String, before: String, filter: IssueFilter, first: Int, includeArchived: Boolean, last: Int,
         orderBy: PaginationOrderBy): IssueConnection!
  issue(id: String!): Issue!
  teams(after: String, before: String, filter: TeamFilter, first: Int, includeArchived: Boolean, last: Int,
        orderBy: PaginationOrderBy): TeamConnection!
  users(after: String, before: String, filter: UserFilter, first: Int, includeArchived: Boolean,
        includeDisabled: Boolean, last: Int, orderBy: PaginationOrderBy): UserConnection!
  viewer: User!
}
"""

SDL = _COMPARATORS + _FILTERS + _TYPES
