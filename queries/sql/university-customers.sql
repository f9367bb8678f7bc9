-- Customers with a university (edu.tr) e-mail address, by language.
SELECT language, count(*) AS customers
FROM customers
WHERE lower(split_part(email, '@', 2)) LIKE '%edu.tr'
GROUP BY 1 ORDER BY 2 DESC;
