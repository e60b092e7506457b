/* Unit tests of the uint64_t hash map, checked against a plain array. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/u64map.h"

static void
test_put_get_del(void **unused)
{
	struct u64map	*m = u64map_new();
	int		 a = 1, b = 2;

	/* Insert, replace, remove and miss behave as documented. */
	assert_null(u64map_get(m, 7));
	assert_int_equal(u64map_put(m, 7, &a), 0);
	assert_ptr_equal(u64map_get(m, 7), &a);
	assert_int_equal(u64map_put(m, 7, &b), 0);
	assert_ptr_equal(u64map_get(m, 7), &b);
	assert_int_equal(u64map_count(m), 1);
	assert_ptr_equal(u64map_del(m, 7), &b);
	assert_null(u64map_del(m, 7));
	assert_int_equal(u64map_count(m), 0);
	u64map_free(m);
}

static void
test_random_against_model(void **unused)
{
	enum { N = 4096, OPS = 200000 };
	static void	*model[N];
	struct u64map	*m = u64map_new();
	uint64_t	 k;
	size_t		 i, count = 0;
	char		 tag[N];

	/* A random mix of puts and deletes over colliding keys leaves the
	 * map equal to a model, so deletion never breaks a probe run. */
	srandom(42);
	for (i = 0; i < OPS; i++) {
		k = (uint64_t)(random() % N);
		if (random() % 3 == 0) {
			assert_ptr_equal(u64map_del(m, k * 1024), model[k]);
			if (model[k] != NULL)
				count--;
			model[k] = NULL;
		} else {
			if (model[k] == NULL)
				count++;
			model[k] = &tag[k];
			assert_int_equal(u64map_put(m, k * 1024, &tag[k]), 0);
		}
	}
	assert_int_equal(u64map_count(m), count);
	for (k = 0; k < N; k++)
		assert_ptr_equal(u64map_get(m, k * 1024), model[k]);
	u64map_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_del),
		cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
