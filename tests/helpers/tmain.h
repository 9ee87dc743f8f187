/*
 * The main() of every test program, unit and integration: runs one Suite
 * and fails when no test ran (a CK_RUN_CASE or CK_RUN_SUITE that names
 * nothing, tags that match nothing, an empty suite). Needs only Check.
 */
#ifndef BD_TESTS_HELPERS_TMAIN_H
#define BD_TESTS_HELPERS_TMAIN_H

#include <check.h>
#include <stddef.h>

/* The exit status of a program that ran no test (automake's "skipped"). */
#define TMAIN_NO_TEST 77

/*
 * Runs every test of s (as narrowed by Check's CK_* variables) with
 * CK_NORMAL output and frees s. Returns the exit status for main():
 * EXIT_SUCCESS when at least one test ran and every test passed,
 * EXIT_FAILURE when one failed, TMAIN_NO_TEST (a failure too, but one that
 * `make check-some` can tell apart) when none ran, which it says on stderr
 * with the variables that narrowed the run.
 */
int tmain_run(Suite *s);

/* One test of a unit suite. */
struct tmain_case {
	const char *name;	/* its TCase (CK_RUN_CASE=name runs it) */
	const TTest *test;
};

/* The number of elements of the array a (not of a pointer). */
#define TMAIN_N(a) (sizeof(a) / sizeof((a)[0]))

/* A Suite named name of one TCase per case, each with the checked
 * fixture setup/teardown (NULL: none). */
Suite *tmain_suite(const char *name, const struct tmain_case *cases,
		   size_t n, SFun setup, SFun teardown);

/*
 * The whole main() of a unit test program: tmain_run() of tmain_suite().
 * A program lists its tests in a local table (START_TEST's names are
 * variables, not constants, so the table cannot be static):
 *
 *	int main(void)
 *	{
 *		const struct tmain_case cases[] = {
 *			{ "split", test_lines_split },
 *		};
 *
 *		return tmain_main("util", cases, TMAIN_N(cases), NULL, NULL);
 *	}
 */
int tmain_main(const char *name, const struct tmain_case *cases, size_t n,
	       SFun setup, SFun teardown);

#endif
