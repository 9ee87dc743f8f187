/*
 * The shared test main(): a green run must have run something.
 */
#include "tmain.h"

#include <stdio.h>
#include <stdlib.h>

int tmain_run(Suite *s)
{
	static const char *const vars[] = { "CK_RUN_SUITE", "CK_RUN_CASE",
					    "CK_INCLUDE_TAGS",
					    "CK_EXCLUDE_TAGS" };
	SRunner *sr;
	int failed, ran;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	ran = srunner_ntests_run(sr);
	srunner_free(sr);
	if (ran > 0)
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;
	fprintf(stderr, "FAILED: no test ran");
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (v && *v)
			fprintf(stderr, " %s=%s", vars[i], v);
	}
	fputc('\n', stderr);
	return TMAIN_NO_TEST;
}

Suite *tmain_suite(const char *name, const struct tmain_case *cases,
		   size_t n, SFun setup, SFun teardown)
{
	Suite *s = suite_create(name);

	for (size_t i = 0; i < n; i++) {
		TCase *tc = tcase_create(cases[i].name);

		if (setup || teardown)
			tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int tmain_main(const char *name, const struct tmain_case *cases, size_t n,
	       SFun setup, SFun teardown)
{
	return tmain_run(tmain_suite(name, cases, n, setup, teardown));
}
