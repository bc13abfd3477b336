"""The monthly return (月报) a union files for an area: stored once per calendar month, compared with the previous
return (stations opened, closed and changed; covered share per township now and last month), and written as an
XLSX workbook set up for printing and a PDF brief."""
