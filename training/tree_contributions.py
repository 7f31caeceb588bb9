"""Path-based per-feature contributions of a LightGBM booster's raw score, walked in numpy over flat node arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# LightGBM reads |value| <= kZeroThreshold as zero (its dense rows drop such values before the trees see them).
ZERO_THRESHOLD = 1e-35


@dataclass(frozen=True)
class TreePaths:
    """Every tree of a booster as flat arrays of nodes, leaves included (a leaf's children are itself).

    A node's value is the mean of the leaf values under it, weighted by training rows (the expectation
    LightGBM's TreeSHAP uses too). Walking a row down a tree, each split moves the value from the node's to
    the child's; that step is the split feature's contribution (Saabas' "treeinterpreter"), so the roots'
    values (the bias) plus the contributions telescope to the leaf values: the raw score.
    """

    n_features: int
    roots: np.ndarray  # int64 [trees]: node id of each tree's root
    feature: np.ndarray  # int64 [nodes]: split feature (0 for leaves: read, never used)
    threshold: np.ndarray  # float64 [nodes]: numerical threshold (+inf for leaves: a leaf "goes left" to itself)
    left: np.ndarray  # int64 [nodes]
    right: np.ndarray  # int64 [nodes]
    nan_left: np.ndarray  # bool [nodes]: where a NaN goes, after LightGBM's missing-value rules
    zero_left: np.ndarray  # bool [nodes]: where a zero goes
    category: np.ndarray  # int64 [nodes]: row of `category_left` for a categorical split, -1 otherwise
    category_left: np.ndarray  # bool [categorical splits x categories]: which integer categories go left
    value: np.ndarray  # float64 [nodes]: leaf value, or the row-weighted mean of the leaves below
    leaf_contributions: np.ndarray  # float64 [nodes x features]: per leaf, the summed steps of its path
    leaf_node: np.ndarray  # int64 [trees x leaves]: node id of LightGBM's leaf index in each tree (-1: none)
    depth: int  # longest root-to-leaf path in edges

    @property
    def bias(self) -> float:
        return float(self.value[self.roots].sum())

    @classmethod
    def of(cls, booster: Any) -> TreePaths:
        """Parse `booster.dump_model()` (a `lightgbm.Booster`) once."""
        dump = booster.dump_model()
        if dump.get("num_tree_per_iteration", 1) != 1 or dump.get("average_output", False):
            raise ValueError("only single-output boosters that sum their trees are supported")
        n_features = int(dump["max_feature_idx"]) + 1
        nodes: list[dict[str, Any]] = []
        parent_of: list[int] = []
        roots: list[int] = []
        tree_of: list[int] = []
        for t, tree in enumerate(dump["tree_info"]):
            stack = [(tree["tree_structure"], -1)]
            roots.append(len(nodes))
            while stack:  # pre-order ids; children are linked once both are numbered
                node, parent = stack.pop()
                parent_of.append(parent)
                tree_of.append(t)
                nodes.append(node)
                if "split_index" in node:
                    stack.append((node["right_child"], len(nodes) - 1))
                    stack.append((node["left_child"], len(nodes) - 1))
        n = len(nodes)
        index = {id(node): i for i, node in enumerate(nodes)}
        feature = np.zeros(n, np.int64)
        threshold = np.full(n, np.inf)
        left = np.arange(n, dtype=np.int64)
        right = np.arange(n, dtype=np.int64)
        nan_left = np.ones(n, bool)
        zero_left = np.ones(n, bool)
        category = np.full(n, -1, np.int64)
        categories: list[list[int]] = []
        value = np.zeros(n)
        count = np.zeros(n)
        leaf_node = np.full((len(roots), max((int(t["num_leaves"]) for t in dump["tree_info"]), default=1)), -1,
                            np.int64)
        for i, node in enumerate(nodes):
            if "split_index" not in node:
                value[i] = float(node["leaf_value"])
                count[i] = float(node.get("leaf_count", 0))
                leaf_node[tree_of[i], int(node.get("leaf_index", 0))] = i
                continue
            feature[i] = int(node["split_feature"])
            left[i] = index[id(node["left_child"])]
            right[i] = index[id(node["right_child"])]
            if node["decision_type"] == "==":
                category[i] = len(categories)
                categories.append([int(c) for c in str(node["threshold"]).split("||")])
                threshold[i] = np.nan
                continue
            if node["decision_type"] != "<=":
                raise ValueError(f"unknown decision type {node['decision_type']!r}")
            thr = float(node["threshold"])
            threshold[i] = thr
            missing, default_left = node["missing_type"], bool(node["default_left"])
            # LightGBM's NumericalDecision: a NaN is a zero unless missing values are NaN; a zero is missing
            # when missing values are zeros; missing goes the default way, anything else compares.
            zero_left[i] = default_left if missing == "Zero" else thr >= 0.0
            nan_left[i] = default_left if missing in ("NaN", "Zero") else thr >= 0.0
        width = max((max(c) for c in categories), default=-1) + 1
        category_left = np.zeros((len(categories), max(width, 1)), bool)
        for row, cats in enumerate(categories):
            category_left[row, cats] = True
        # Node values bottom-up: children have larger pre-order ids than their parent.
        for i in range(n - 1, -1, -1):
            if left[i] != i:
                count[i] = count[left[i]] + count[right[i]]
                total = count[i]
                value[i] = ((count[left[i]] * value[left[i]] + count[right[i]] * value[right[i]]) / total
                            if total > 0 else 0.5 * (value[left[i]] + value[right[i]]))
        # Top-down: each node's path steps, per feature (dense: trees x leaves x features stays small).
        steps = np.zeros((n, n_features))
        depth_of = np.zeros(n, np.int64)
        for i in range(n):
            p = parent_of[i]
            if p >= 0:
                steps[i] = steps[p]
                steps[i, feature[p]] += value[i] - value[p]
                depth_of[i] = depth_of[p] + 1
        return cls(
            n_features=n_features, roots=np.asarray(roots, np.int64), feature=feature, threshold=threshold,
            left=left, right=right, nan_left=nan_left, zero_left=zero_left, category=category,
            category_left=category_left, value=value, leaf_contributions=steps, leaf_node=leaf_node,
            depth=int(depth_of.max(initial=0)),
        )

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Node id of the leaf each row reaches in each tree: int64 [rows x trees]."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        x = np.where(np.abs(x) <= ZERO_THRESHOLD, 0.0, x)
        n_rows, n_trees = len(x), len(self.roots)
        flat = x.ravel()
        out = np.tile(self.roots, n_rows)
        # Only the (row, tree) pairs still at a split are walked on: most reach a leaf long before `depth`.
        at = np.flatnonzero(self.left[out] != out)
        node = out[at]
        base = (at // max(n_trees, 1)) * self.n_features
        has_categories = len(self.category_left) > 0
        while len(at):
            v = flat[base + self.feature[node]]
            go_left = v <= self.threshold[node]
            nan = np.isnan(v)
            if nan.any():
                go_left = np.where(nan, self.nan_left[node], go_left)
            zero = v == 0.0
            if zero.any():
                go_left = np.where(zero, self.zero_left[node], go_left)
            if has_categories:
                cat = self.category[node]
                split = cat >= 0
                if split.any():
                    go_left[split] = self._category_goes_left(cat[split], v[split])
            node = np.where(go_left, self.left[node], self.right[node])
            inner = self.left[node] != node
            if not inner.all():
                out[at[~inner]] = node[~inner]
                at, node, base = at[inner], node[inner], base[inner]
        return out.reshape(n_rows, n_trees)

    def _category_goes_left(self, rows: np.ndarray, v: np.ndarray) -> np.ndarray:
        # LightGBM's CategoricalDecision: NaN goes right; a value is cast to int (towards zero, so -0.5 is
        # category 0), negative ones and categories outside the split's bitset go right.
        width = self.category_left.shape[1]
        ok = ~np.isnan(v) & (v > -1) & (v < width)
        code = np.where(ok, v, 0).astype(np.int64)
        return ok & self.category_left[rows, code]

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        """The booster's raw prediction, summed over trees in LightGBM's order (so the same float64 bits)."""
        leaf_values = self.value[self.leaves(x)]
        if leaf_values.shape[1] == 0:
            return np.zeros(len(leaf_values))
        return np.cumsum(leaf_values, axis=1)[:, -1]  # cumsum is sequential; sum() would pair terms up

    def nodes_of_leaf_indices(self, leaf_indices: np.ndarray) -> np.ndarray:
        """Node ids [rows x trees] of LightGBM's per-tree leaf indices (`booster.predict(x, pred_leaf=True)`)."""
        leaf_indices = np.asarray(leaf_indices, dtype=np.int64).reshape(-1, len(self.roots))
        return self.leaf_node[np.arange(len(self.roots)), leaf_indices]

    def contributions(self, x: np.ndarray | None = None, *, leaves: np.ndarray | None = None) -> np.ndarray:
        """Per-feature contributions [rows x features]; with `bias` they add up to `raw_score(x)`.

        `leaves` (node ids, e.g. from `nodes_of_leaf_indices`) skips the walk: LightGBM's own walk to the
        leaves is ten times faster than numpy's for a request's few rows, and gives the same leaves.
        """
        if leaves is None:
            if x is None:
                raise ValueError("give the rows or their leaves")
            leaves = self.leaves(x)
        return self.leaf_contributions[leaves].sum(axis=1)
