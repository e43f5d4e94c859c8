/* The linearizability search of kvctl/checker/search.py, compiled.
 *
 * search.py holds the algorithm and its explanation; this file runs the same loop, step for
 * step, on C arrays: the same candidates in the same order, the same memo, the same limits,
 * so it returns exactly what the Python loop returns (the tests run both). The model stays
 * in Python: its `step` is called once per (state, operation) pair, as there.
 *
 * What differs is only how things are stored:
 * - `lin`, the set of operations linearized, is a bitset of 64-bit words, and its hash is
 *   kept up to date as bits flip (Zobrist hashing: one random word per operation, XORed);
 * - the memo is an open-addressing table of (hash, state, lin) records in one arena;
 * - the transitions (state, operation) -> state are another open-addressing table.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INF INT64_MAX

#if PY_BIG_ENDIAN
#error "the masks of `before` are read as little-endian words"
#endif

typedef struct {
    uint64_t *keys; /* (state << 32 | op) + 1; 0 is an empty slot */
    int32_t *vals;
    size_t cap, len;
} Trans;

typedef struct {
    uint64_t *arena; /* records of `stride` words: hash, state, then lin */
    size_t stride, records, arena_cap;
    uint64_t *slots; /* record index + 1; 0 is an empty slot */
    size_t cap;
} Memo;

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int trans_init(Trans *t) {
    t->cap = 64;
    t->len = 0;
    t->keys = calloc(t->cap, sizeof *t->keys);
    t->vals = malloc(t->cap * sizeof *t->vals);
    return t->keys && t->vals ? 0 : -1;
}

/* The slot of `key`: where it is, or the empty slot where it would go. */
static size_t trans_slot(const Trans *t, uint64_t key) {
    size_t i = mix(key) & (t->cap - 1);
    while (t->keys[i] && t->keys[i] != key) i = (i + 1) & (t->cap - 1);
    return i;
}

static int trans_put(Trans *t, uint64_t key, int32_t val) {
    if (2 * (t->len + 1) > t->cap) {
        Trans old = *t;
        t->cap *= 2;
        t->keys = calloc(t->cap, sizeof *t->keys);
        t->vals = malloc(t->cap * sizeof *t->vals);
        if (!t->keys || !t->vals) {
            free(old.keys);
            free(old.vals);
            return -1;
        }
        for (size_t i = 0; i < old.cap; i++) {
            if (old.keys[i]) {
                size_t j = trans_slot(t, old.keys[i]);
                t->keys[j] = old.keys[i];
                t->vals[j] = old.vals[i];
            }
        }
        free(old.keys);
        free(old.vals);
    }
    size_t i = trans_slot(t, key);
    t->keys[i] = key;
    t->vals[i] = val;
    t->len++;
    return 0;
}

static int memo_init(Memo *m, size_t words) {
    m->stride = 2 + words;
    m->records = 0;
    m->arena_cap = 256;
    m->arena = malloc(m->arena_cap * m->stride * sizeof *m->arena);
    m->cap = 512;
    m->slots = calloc(m->cap, sizeof *m->slots);
    return m->arena && m->slots ? 0 : -1;
}

static size_t memo_slot(const Memo *m, uint64_t hash, uint64_t state, const uint64_t *lin) {
    size_t words = m->stride - 2;
    size_t i = hash & (m->cap - 1);
    for (;;) {
        uint64_t s = m->slots[i];
        if (!s) return i;
        const uint64_t *r = m->arena + (s - 1) * m->stride;
        if (r[0] == hash && r[1] == state && !memcmp(r + 2, lin, words * sizeof *lin)) return i;
        i = (i + 1) & (m->cap - 1);
    }
}

/* Adds (lin, state) unless it is there: 1 if added, 0 if it was there, -1 out of memory. */
static int memo_add(Memo *m, uint64_t hash, uint64_t state, const uint64_t *lin) {
    size_t i = memo_slot(m, hash, state, lin);
    if (m->slots[i]) return 0;
    if (m->records == m->arena_cap) {
        uint64_t *grown = realloc(m->arena, 2 * m->arena_cap * m->stride * sizeof *m->arena);
        if (!grown) return -1;
        m->arena = grown;
        m->arena_cap *= 2;
    }
    uint64_t *r = m->arena + m->records * m->stride;
    r[0] = hash;
    r[1] = state;
    memcpy(r + 2, lin, (m->stride - 2) * sizeof *lin);
    m->slots[i] = ++m->records;
    if (2 * m->records > m->cap) {
        size_t cap = 2 * m->cap;
        uint64_t *slots = calloc(cap, sizeof *slots);
        if (!slots) return -1;
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
        for (size_t k = 0; k < m->records; k++) {
            const uint64_t *q = m->arena + k * m->stride;
            size_t j = q[0] & (cap - 1);
            while (m->slots[j]) j = (j + 1) & (cap - 1);
            m->slots[j] = k + 1;
        }
    }
    return 1;
}

typedef struct {
    PyObject *ops, *step, *states, *ids; /* ops: a sequence; states: a list; ids: state -> id */
    Trans trans;
} Model;

/* The state after operation i in state sid, -1 if illegal, -2 on a Python error. */
static int32_t transition(Model *m, Py_ssize_t i, int32_t sid) {
    uint64_t key = ((uint64_t)sid << 32 | (uint64_t)i) + 1;
    size_t slot = trans_slot(&m->trans, key);
    if (m->trans.keys[slot]) return m->trans.vals[slot];
    PyObject *out = PyObject_CallFunctionObjArgs(
        m->step, PyList_GET_ITEM(m->states, sid), PySequence_Fast_GET_ITEM(m->ops, i), NULL);
    if (!out) return -2;
    int32_t r = -1;
    if (!PyTuple_Check(out) || PyTuple_GET_SIZE(out) != 2) {
        PyErr_SetString(PyExc_TypeError, "model.step must return (legal, state)");
        Py_DECREF(out);
        return -2;
    }
    int legal = PyObject_IsTrue(PyTuple_GET_ITEM(out, 0));
    if (legal < 0) {
        Py_DECREF(out);
        return -2;
    }
    if (legal) {
        PyObject *after = PyTuple_GET_ITEM(out, 1);
        PyObject *known = PyDict_GetItemWithError(m->ids, after);
        if (known) {
            r = (int32_t)PyLong_AsLong(known);
        } else if (PyErr_Occurred()) {
            Py_DECREF(out);
            return -2;
        } else {
            r = (int32_t)PyList_GET_SIZE(m->states);
            PyObject *id = PyLong_FromLong(r);
            if (!id || PyDict_SetItem(m->ids, after, id) < 0 || PyList_Append(m->states, after) < 0) {
                Py_XDECREF(id);
                Py_DECREF(out);
                return -2;
            }
            Py_DECREF(id);
        }
    }
    Py_DECREF(out);
    if (trans_put(&m->trans, key, r) < 0) {
        PyErr_NoMemory();
        return -2;
    }
    return r;
}

static double monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    int64_t pos;
    int32_t entry;
} Placed;

static int by_position(const void *a, const void *b) {
    const Placed *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return (x->entry > y->entry) - (x->entry < y->entry); /* stable, as Python's sorted */
}

/* An operation's rank (`Op.call` or `Op.ret`) doubled, plus `odd`; INF for None. */
static int position(PyObject *rank, int odd, int64_t *out) {
    if (rank == Py_None) {
        *out = INF;
        return 0;
    }
    long long v = PyLong_AsLongLong(rank);
    if (v == -1 && PyErr_Occurred()) return -1;
    *out = 2 * (int64_t)v + odd;
    return 0;
}

/* Every word of `need` is in `lin`: operation i's predecessors are linearized. */
static inline int ready(const uint64_t *lin, const uint64_t *need, size_t words) {
    for (size_t k = 0; k < words; k++)
        if ((lin[k] & need[k]) != need[k]) return 0;
    return 1;
}

static PyObject *list_of(const int32_t *items, Py_ssize_t len) {
    PyObject *out = PyList_New(len);
    for (Py_ssize_t k = 0; out && k < len; k++) {
        PyObject *v = PyLong_FromLong(items[k]);
        if (!v) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, k, v);
    }
    return out;
}

static int compare_ids(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* search(ops, model, before, deadline, max_steps, memo_limit, audit_every, call_field,
 *        ret_field) -> (valid, order, blocked, states, steps, memo, why)
 * as search.search computes them; `why` is what ran out ("steps", "memory", "time") or None. */
static PyObject *search(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *ops_in, *model, *before, *deadline_in;
    long long max_steps, memo_limit, audit_every;
    Py_ssize_t call_field, ret_field;
    if (!PyArg_ParseTuple(args, "OOOOLLLnn", &ops_in, &model, &before, &deadline_in, &max_steps,
                          &memo_limit, &audit_every, &call_field, &ret_field))
        return NULL;
    double deadline = 0;
    if (deadline_in != Py_None) {
        deadline = PyFloat_AsDouble(deadline_in);
        if (deadline == -1.0 && PyErr_Occurred()) return NULL;
    }
    Model m = {0};
    m.ops = PySequence_Fast(ops_in, "ops must be a sequence");
    if (!m.ops) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(m.ops);
    size_t words = (size_t)(n + 63) / 64;
    size_t slots = (size_t)(2 * n + 5), tail = slots - 1;
    size_t heads = (size_t)(2 * n);
    PyObject *result = NULL, *read_only = NULL;
    int64_t *pos = malloc(slots * sizeof *pos);
    int32_t *nxt = malloc(slots * sizeof *nxt), *prv = malloc(slots * sizeof *prv);
    char *has_ret = calloc((size_t)n + 1, 1);
    uint64_t *lin = calloc(words + 1, sizeof *lin), *zob = malloc(((size_t)n + 1) * sizeof *zob);
    size_t *need_at = calloc((size_t)n + 1, sizeof *need_at);   /* offsets into needs */
    size_t *need_len = calloc((size_t)n + 1, sizeof *need_len); /* words; 0: no constraint */
    uint64_t *needs = malloc(sizeof *needs); /* grown once the masks are read */
    int32_t *stack_e = malloc(((size_t)n + 1) * sizeof *stack_e);
    int32_t *stack_s = malloc(((size_t)n + 1) * sizeof *stack_s);
    char *stack_mode = malloc((size_t)n + 1);
    int32_t *prefix = malloc(((size_t)n + 1) * sizeof *prefix);
    int32_t *tried = NULL;
    size_t tried_len = 0, tried_cap = 0, prefix_len = 0, depth = 0;
    Memo memo = {0};
    m.trans.keys = NULL;
    m.trans.vals = NULL;
    if (!pos || !nxt || !prv || !has_ret || !lin || !zob || !need_at || !need_len || !needs ||
        !stack_e || !stack_s || !stack_mode || !prefix || trans_init(&m.trans) < 0 ||
        memo_init(&memo, words) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    m.step = PyObject_GetAttrString(model, "step");
    read_only = PyObject_GetAttrString(model, "read_only");
    m.states = PyList_New(0);
    m.ids = PyDict_New();
    if (!m.step || !read_only || !m.states || !m.ids) goto done;

    /* The four lists of search._lists, in time order behind their heads. */
    size_t counts[4] = {0, 0, 0, 0};
    Placed *lists = malloc((2 * (size_t)n + 1) * sizeof *lists);
    char *which = malloc((size_t)n + 1);
    if (!lists || !which) {
        free(lists);
        free(which);
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t known_left = 0;
    for (size_t k = 0; k < slots; k++) {
        pos[k] = INF;
        nxt[k] = prv[k] = (int32_t)tail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *op = PySequence_Fast_GET_ITEM(m.ops, i);
        if (!PyTuple_Check(op) || PyTuple_GET_SIZE(op) <= call_field ||
            PyTuple_GET_SIZE(op) <= ret_field) {
            PyErr_SetString(PyExc_TypeError, "ops must be kvctl.history.Op");
            goto lists_failed;
        }
        PyObject *ret = PyTuple_GET_ITEM(op, ret_field);
        if (position(PyTuple_GET_ITEM(op, call_field), 0, &pos[i]) < 0 ||
            position(ret, 1, &pos[n + i]) < 0)
            goto lists_failed;
        PyObject *ro = PyObject_CallOneArg(read_only, op);
        int is_ro = ro ? PyObject_IsTrue(ro) : -1;
        Py_XDECREF(ro);
        if (is_ro < 0) goto lists_failed;
        which[i] = is_ro ? 0 : ret == Py_None ? 2 : 1;
        counts[(int)which[i]]++;
        if (ret != Py_None) {
            has_ret[i] = 1;
            known_left++;
            counts[3]++;
        }
        zob[i] = mix((uint64_t)i ^ 0x5bd1e995ULL << 32);
    }
    {
        size_t start[4], fill[4];
        start[0] = 0;
        for (int l = 1; l < 4; l++) start[l] = start[l - 1] + counts[l - 1];
        memcpy(fill, start, sizeof fill);
        for (Py_ssize_t i = 0; i < n; i++) {
            lists[fill[(int)which[i]]++] = (Placed){pos[i], (int32_t)i};
            if (has_ret[i]) lists[fill[3]++] = (Placed){pos[n + i], (int32_t)(n + i)};
        }
        for (int l = 0; l < 4; l++) {
            qsort(lists + start[l], counts[l], sizeof *lists, by_position);
            size_t last = heads + (size_t)l;
            for (size_t k = 0; k < counts[l]; k++) {
                int32_t e = lists[start[l] + k].entry;
                nxt[last] = e;
                prv[e] = (int32_t)last;
                last = (size_t)e;
            }
            nxt[last] = (int32_t)tail;
        }
    }
    free(lists);
    free(which);
    goto lists_done;
lists_failed:
    free(lists);
    free(which);
    goto done;
lists_done:
    if (known_left == 0) {
        result = Py_BuildValue("(O[]O[]iiO)", Py_True, Py_None, 0, 0, Py_None);
        goto done;
    }

    /* before[i] as words, each mask only as long as its highest bit needs. */
    if (before != Py_None) {
        PyObject *masks = PySequence_Fast(before, "before must be a sequence");
        if (!masks) goto done;
        if (PySequence_Fast_GET_SIZE(masks) != n) {
            PyErr_SetString(PyExc_ValueError, "before must have a mask per operation");
            Py_DECREF(masks);
            goto done;
        }
        size_t total = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *mask = PySequence_Fast_GET_ITEM(masks, i);
            if (!PyLong_Check(mask) || _PyLong_Sign(mask) < 0) {
                PyErr_SetString(PyExc_TypeError, "before must hold non-negative ints");
                Py_DECREF(masks);
                goto done;
            }
            int64_t bits = (int64_t)_PyLong_NumBits(mask);
            if (bits < 0) {
                Py_DECREF(masks);
                goto done;
            }
            need_len[i] = (size_t)(bits + 63) / 64;
            need_at[i] = total;
            total += need_len[i];
        }
        uint64_t *grown = realloc(needs, (total + 1) * sizeof *needs);
        if (grown) needs = grown;
        if (!grown) {
            Py_DECREF(masks);
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!need_len[i]) continue;
            PyObject *mask = PySequence_Fast_GET_ITEM(masks, i);
#if PY_VERSION_HEX >= 0x030D0000
            int bad = PyLong_AsNativeBytes(mask, needs + need_at[i], (Py_ssize_t)(need_len[i] * 8),
                                           Py_ASNATIVEBYTES_LITTLE_ENDIAN |
                                               Py_ASNATIVEBYTES_UNSIGNED_BUFFER) < 0;
#else
            int bad = _PyLong_AsByteArray((PyLongObject *)mask,
                                          (unsigned char *)(needs + need_at[i]),
                                          need_len[i] * 8, 1, 0) < 0;
#endif
            if (bad) {
                Py_DECREF(masks);
                goto done;
            }
        }
        Py_DECREF(masks);
    }

    PyObject *init = PyObject_CallMethod(model, "init", NULL);
    if (!init) goto done;
    PyObject *zero = PyLong_FromLong(0);
    int bad = !zero || PyList_Append(m.states, init) < 0 || PyDict_SetItem(m.ids, init, zero) < 0;
    Py_DECREF(init);
    Py_XDECREF(zero);
    if (bad) goto done;

    /* The loop of search.search, line for line. */
    int64_t cap = max_steps < 0 ? INT64_MAX - 1 : max_steps;
    int64_t steps = 0, audit = audit_every < cap + 1 ? audit_every : cap + 1;
    int64_t furthest = -1, blocked = -1;
    uint64_t zhash = 0;
    int32_t s = 0, r = -1, e = (int32_t)tail;
    int mode = 0;
    int64_t w = pos[nxt[heads + 3]];
    const char *why = NULL;
    for (;;) {
        steps++;
        if (steps >= audit) {
            audit = steps + audit_every < cap + 1 ? steps + audit_every : cap + 1;
            if (PyErr_CheckSignals() < 0) goto done; /* Ctrl-C stops a long search, as in Python */
            if (steps > cap)
                why = "steps";
            else if ((long long)memo.records > memo_limit)
                why = "memory";
            else if (deadline_in != Py_None && monotonic() > deadline)
                why = "time";
            if (why) {
                PyObject *pre = list_of(prefix, (Py_ssize_t)prefix_len);
                if (pre)
                    result = Py_BuildValue("(sNO[]LLs)", "unknown", pre, Py_None, (long long)steps,
                                           (long long)memo.records, why);
                goto done;
            }
        }
        int take = 0;
        if (mode == 0) {
            w = pos[nxt[heads + 3]];
            e = nxt[heads];
            int found = 0;
            while (pos[e] < w) {
                if (ready(lin, needs + need_at[e], need_len[e])) {
                    r = transition(&m, e, s);
                    if (r == -2) goto done;
                    if (r >= 0) {
                        found = 1;
                        break;
                    }
                }
                e = nxt[e];
            }
            if (!found) {
                mode = 1;
                e = nxt[heads + 1];
                continue;
            }
            lin[e >> 6] |= 1ULL << (e & 63);
            int added = memo_add(&memo, zhash ^ zob[e] ^ mix((uint64_t)s), (uint64_t)s, lin);
            if (added < 0) {
                PyErr_NoMemory();
                goto done;
            }
            if (added) {
                take = 1;
            } else {
                lin[e >> 6] &= ~(1ULL << (e & 63));
            }
        } else if (pos[e] < w) {
            if (ready(lin, needs + need_at[e], need_len[e])) {
                r = transition(&m, e, s);
                if (r == -2) goto done;
                if (r >= 0 && !(mode == 2 && r == s)) {
                    lin[e >> 6] |= 1ULL << (e & 63);
                    int added = memo_add(&memo, zhash ^ zob[e] ^ mix((uint64_t)r), (uint64_t)r, lin);
                    if (added < 0) {
                        PyErr_NoMemory();
                        goto done;
                    }
                    if (added)
                        take = 1;
                    else
                        lin[e >> 6] &= ~(1ULL << (e & 63));
                }
            }
            if (!take) {
                e = nxt[e];
                continue;
            }
        } else if (mode == 1) {
            mode = 2;
            e = nxt[heads + 2];
            continue;
        } else {
            /* The first pending return: its operation cannot be placed from here. */
            int64_t at = pos[nxt[heads + 3]];
            if (at > furthest) {
                furthest = at;
                blocked = nxt[heads + 3] - n;
                tried_len = 0;
                memcpy(prefix, stack_e, depth * sizeof *prefix);
                prefix_len = depth;
            }
            if (at >= furthest) {
                size_t k = 0;
                while (k < tried_len && tried[k] != s) k++;
                if (k == tried_len) {
                    if (tried_len == tried_cap) {
                        size_t grown_cap = tried_cap ? 2 * tried_cap : 8;
                        int32_t *grown = realloc(tried, grown_cap * sizeof *tried);
                        if (!grown) {
                            PyErr_NoMemory();
                            goto done;
                        }
                        tried = grown;
                        tried_cap = grown_cap;
                    }
                    tried[tried_len++] = s;
                }
            }
        }
        if (take) {
            /* lin already holds e (the memo key was built in it) */
            stack_e[depth] = e;
            stack_s[depth] = s;
            stack_mode[depth++] = (char)mode;
            zhash ^= zob[e];
            s = r;
            int32_t p = prv[e], q = nxt[e];
            nxt[p] = q;
            prv[q] = p;
            if (has_ret[e]) {
                p = prv[e + n];
                q = nxt[e + n];
                nxt[p] = q;
                prv[q] = p;
                if (--known_left == 0) {
                    PyObject *done_order = list_of(stack_e, (Py_ssize_t)depth);
                    if (done_order)
                        result = Py_BuildValue("(ONO[]LLO)", Py_True, done_order, Py_None,
                                               (long long)steps, (long long)memo.records, Py_None);
                    goto done;
                }
            }
            mode = 0;
            continue;
        }
        for (;;) {
            if (depth == 0) {
                qsort(tried, tried_len, sizeof *tried, compare_ids);
                PyObject *pre = list_of(prefix, (Py_ssize_t)prefix_len);
                PyObject *states = PyList_New((Py_ssize_t)tried_len);
                if (!pre || !states) {
                    Py_XDECREF(pre);
                    Py_XDECREF(states);
                    goto done;
                }
                for (size_t k = 0; k < tried_len; k++) {
                    PyObject *state = PyList_GET_ITEM(m.states, tried[k]);
                    Py_INCREF(state);
                    PyList_SET_ITEM(states, (Py_ssize_t)k, state);
                }
                result = Py_BuildValue("(ONLNLLO)", Py_False, pre, (long long)blocked, states,
                                       (long long)steps, (long long)memo.records, Py_None);
                goto done;
            }
            depth--;
            e = stack_e[depth];
            s = stack_s[depth];
            mode = stack_mode[depth];
            lin[e >> 6] &= ~(1ULL << (e & 63));
            zhash ^= zob[e];
            if (has_ret[e]) {
                known_left++;
                int32_t ret = (int32_t)(e + n);
                nxt[prv[ret]] = prv[nxt[ret]] = ret;
            }
            nxt[prv[e]] = prv[nxt[e]] = e;
            if (mode) break;
        }
        w = pos[nxt[heads + 3]];
        e = nxt[e];
    }

done:
    Py_XDECREF(m.ops);
    Py_XDECREF(m.step);
    Py_XDECREF(read_only);
    Py_XDECREF(m.states);
    Py_XDECREF(m.ids);
    free(pos);
    free(nxt);
    free(prv);
    free(has_ret);
    free(lin);
    free(zob);
    free(need_at);
    free(need_len);
    free(needs);
    free(stack_e);
    free(stack_s);
    free(stack_mode);
    free(prefix);
    free(tried);
    free(m.trans.keys);
    free(m.trans.vals);
    free(memo.arena);
    free(memo.slots);
    return result;
}

static PyMethodDef methods[] = {
    {"search", search, METH_VARARGS, "The search loop of kvctl.checker.search, compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_csearch", "kvctl.checker.search's loop in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__csearch(void) { return PyModule_Create(&module); }
